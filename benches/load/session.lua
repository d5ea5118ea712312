-- wrk script for the session scenarios: every request carries `Cookie: session=<JWT>`,
-- rotating through the tokens in the file given after `--` (one JWT a line).
-- Each wrk thread starts at a different offset.

local next_id = 0
function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
end

local tokens = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then tokens[#tokens + 1] = line end
  end
  i = (thread_id or 0) * math.floor(#tokens / 2)
end

function request()
  i = i % #tokens + 1
  return wrk.format(nil, nil, { ["Cookie"] = "theme=light; session=" .. tokens[i] .. "; _ga=GA1.2.123456789.1700000000" })
end
