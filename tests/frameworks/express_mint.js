'use strict'
// Mints Express cookie-session cookies with cookie-session's own code (and its `cookies` +
// `keygrip` modules): an app from express_app.js is started on 127.0.0.1 (any free port),
// one request is made to it, and the Set-Cookie values it answers with are printed as a
// Cookie request-header value: `session=VALUE; session.sig=SIG`.
//
//   node tests/frameworks/express_mint.js [--keys K1,K2] [--mode login|session|payload]
//        [--user-id 1] [--user-name alice] [--data JSON] [--name session] [--no-sig] [--tamper] [--json]
//
// --keys        the minting app's keygrip list; cookie-session signs with the FIRST key. To get
//               "signed with the second of two keys", mint with --keys OLD and verify with [NEW, OLD].
// --mode login  (default) POST /login of express_app.js with one user: {"passport":{"user":"ID"}}
//        session  a route sets req.session = --data (a JSON object)
//        payload  cookie-session's encoding (base64 of JSON.stringify) of --data, signed with
//                 `cookies`' set(name, value, {signed: true}) -- e.g. a JSON array, not an object
// --no-sig      print the session cookie without its .sig cookie
// --tamper      change one character of the session value, keep the .sig
// --json        print details as JSON

const path = require('path')
const http = require('http')
module.paths.unshift(path.resolve(process.env.FRAMEWORKS_DIR || path.join(__dirname, '../../target/frameworks'), 'node_modules'))

const Cookies = require('cookies')
const { createApp, DEFAULT_KEYS } = require('./express_app.js')

function parseArgs (argv) {
  const o = { keys: DEFAULT_KEYS, mode: 'login', userId: '1', userName: 'alice', data: undefined, name: 'session', sig: true, tamper: false, json: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--keys') o.keys = argv[++i].split(',')
    else if (a === '--mode') o.mode = argv[++i]
    else if (a === '--user-id') o.userId = argv[++i]
    else if (a === '--user-name') o.userName = argv[++i]
    else if (a === '--data') o.data = JSON.parse(argv[++i])
    else if (a === '--name') o.name = argv[++i]
    else if (a === '--no-sig') o.sig = false
    else if (a === '--tamper') o.tamper = true
    else if (a === '--json') o.json = true
    else throw new Error(`unknown argument ${a}`)
  }
  if (!['login', 'session', 'payload'].includes(o.mode)) throw new Error(`unknown mode ${o.mode}`)
  return o
}

function request (port, method, urlPath, body) {
  return new Promise((resolve, reject) => {
    const headers = body ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } : {}
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers }, (res) => {
      res.resume()
      res.on('end', () => resolve(res))
    })
    req.on('error', reject)
    req.end(body)
  })
}

async function main () {
  const o = parseArgs(process.argv.slice(2))
  const users = { [o.userName]: { id: o.userId, password: 'pw' } }
  const app = createApp({ keys: o.keys, name: o.name, users })
  const data = o.data !== undefined ? o.data : { passport: { user: o.userId } }

  app.post('/_mint_session', (req, res) => {
    req.session = data
    res.send('ok')
  })
  app.post('/_mint_payload', (req, res) => {
    // cookie-session's encode(): Buffer.from(JSON.stringify(body)).toString('base64'),
    // then the same cookies.set(name, value, {signed: true}) cookie-session calls.
    const cookies = new Cookies(req, res, { keys: o.keys })
    cookies.set(o.name, Buffer.from(JSON.stringify(data)).toString('base64'), { signed: true })
    res.send('ok')
  })

  const server = await new Promise((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)) })
  const port = server.address().port
  let res
  try {
    if (o.mode === 'login') res = await request(port, 'POST', '/login', `user=${encodeURIComponent(o.userName)}&password=pw`)
    else if (o.mode === 'session') res = await request(port, 'POST', '/_mint_session')
    else res = await request(port, 'POST', '/_mint_payload')
  } finally {
    server.close()
  }

  const setCookie = res.headers['set-cookie'] || []
  const pick = (n) => {
    const line = setCookie.find((l) => l.startsWith(n + '='))
    if (!line) throw new Error(`no Set-Cookie for ${n}: ${JSON.stringify(setCookie)}`)
    return line.split(';')[0].slice(n.length + 1)
  }
  let value = pick(o.name)
  const sig = pick(o.name + '.sig')
  if (o.tamper) {
    const i = Math.floor(value.length / 2)
    value = value.slice(0, i) + (value[i] === 'A' ? 'B' : 'A') + value.slice(i + 1)
  }
  const header = o.sig ? `${o.name}=${value}; ${o.name}.sig=${sig}` : `${o.name}=${value}`
  if (o.json) {
    const versions = {}
    for (const m of ['express', 'cookie-session', 'cookies', 'keygrip']) versions[m] = require(`${m}/package.json`).version
    let decoded
    try { decoded = JSON.parse(Buffer.from(value, 'base64').toString('utf8')) } catch (e) { decoded = `unreadable: ${e.message}` }
    process.stdout.write(JSON.stringify({
      versions,
      cookie_header: header,
      set_cookie: setCookie,
      value,
      sig: o.sig ? sig : null,
      signed_with: o.keys[0],
      signed_data: `${o.name}=${value}`,
      session: decoded,
      tampered: o.tamper
    }, null, 2) + '\n')
  } else {
    process.stdout.write(header + '\n')
  }
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(1) })
