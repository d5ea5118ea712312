-- wrk script for the soak test's clean traffic (tests/soak/run.sh).
--   wrk ... -s clean.lua URL -- MODE PAGE_LEN JSON_LEN [TOKEN]
-- MODE anon: GET /page, /page, /data in turn; MODE session: GET /session/page with
-- `Cookie: session=TOKEN`. Every response must be a 200 of the expected length: a page
-- with the widget (and, with a session, a user-hash), or the JSON as the upstream sent it.
-- Anything else is counted as bad; done() prints one line: SOAK_WRK {json}.

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  mode = args[1]
  page_len = tonumber(args[2])
  json_len = tonumber(args[3])
  token = args[4]
  ok, bad_status, bad_page, bad_json, no_hash = 0, 0, 0, 0, 0
  first_bad = ""
  if mode == "session" then paths = { "/session/page" } else paths = { "/page", "/page", "/data" } end
  turn = 0
end

function request()
  turn = turn % #paths + 1
  local headers = { ["Accept"] = "text/html,application/xhtml+xml" }
  if token then headers["Cookie"] = "theme=light; session=" .. token end
  return wrk.format("GET", paths[turn], headers)
end

local function note(what)
  if first_bad == "" then first_bad = what end
end

function response(status, headers, body)
  if status ~= 200 then
    bad_status = bad_status + 1
    note("status " .. status)
  elseif body:sub(1, 1) == "{" then
    if #body == json_len and body:sub(-1) == "}" then ok = ok + 1 else bad_json = bad_json + 1; note("json of " .. #body .. "B") end
  elseif #body ~= page_len or not body:find("<invent-assistant", 1, true) or body:sub(-8) ~= "</html>\n" then
    bad_page = bad_page + 1
    note("page of " .. #body .. "B")
  elseif mode == "session" and not body:find('user-hash="', 1, true) then
    no_hash = no_hash + 1
    note("page without user-hash")
  else
    ok = ok + 1
  end
end

function done(summary, latency, requests)
  local t = { ok = 0, bad_status = 0, bad_page = 0, bad_json = 0, no_hash = 0 }
  local first = ""
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + thread:get(k) end
    if first == "" then first = thread:get("first_bad") end
  end
  local e = summary.errors
  io.write(string.format(
    'SOAK_WRK {"requests": %d, "ok": %d, "bad_status": %d, "bad_page": %d, "bad_json": %d, "no_hash": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, "non_2xx": %d, ' ..
    '"first_bad": "%s", "p50_ms": %.2f, "p99_ms": %.2f, "max_ms": %.2f}\n',
    summary.requests, t.ok, t.bad_status, t.bad_page, t.bad_json, t.no_hash,
    e.connect, e.read, e.write, e.timeout, e.status, first,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
