'use strict'
// A small real Express + cookie-session app for end-to-end tests behind the proxy.
//
//   node tests/frameworks/express_app.js [PORT] [--host 127.0.0.1] [--keys NEW,OLD] [--name session] [--stay]
//
// Routes: GET / (a full HTML page naming the signed-in user, or a login form), GET /login
// (the form), POST /login (urlencoded fields `user`, `password`; 303 to / on success, 401
// page on failure), GET or POST /logout (req.session = null, which clears the cookies; 303 to /).
//
// Users: alice / wonderland (id 1), bob / builder (id 2). The session keeps the id where
// Passport keeps it, req.session.passport.user (a string), without Passport itself.
//
// cookie-session signs with keygrip: cookie `session` (base64 JSON) and `session.sig`,
// signed with the first key of --keys (default: $COOKIE_KEYS, comma-separated, else two
// fixed test keys); every key of the list verifies (rotation).
//
// Prints `listening on PORT` on stdout once bound (PORT 0 = any free port) and exits when
// stdin reaches end of file (unless --stay).

const path = require('path')
module.paths.unshift(path.resolve(process.env.FRAMEWORKS_DIR || path.join(__dirname, '../../target/frameworks'), 'node_modules'))

const express = require('express')
const cookieSession = require('cookie-session')

const DEFAULT_KEYS = ['express-test-key-new-0123456789', 'express-test-key-old-0123456789']

const USERS = {
  alice: { id: '1', password: 'wonderland' },
  bob: { id: '2', password: 'builder' }
}

function escapeHtml (s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c])
}

function createApp ({ keys = DEFAULT_KEYS, name = 'session', users = USERS } = {}) {
  const byId = {}
  for (const [user, { id }] of Object.entries(users)) byId[id] = user

  const app = express()
  app.use(cookieSession({ name, keys }))
  app.use(express.urlencoded({ extended: false }))

  const page = (res, title, body, status = 200) => {
    res.status(status).type('html').send(
      '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n' +
      `<title>${escapeHtml(title)}</title>\n</head>\n<body>\n${body}\n</body>\n</html>\n`
    )
  }
  const loginForm =
    '<form method="post" action="/login">\n' +
    '<label>User <input name="user" autocomplete="username"></label>\n' +
    '<label>Password <input name="password" type="password" autocomplete="current-password"></label>\n' +
    '<button type="submit">Log in</button>\n' +
    '</form>'

  app.get('/', (req, res) => {
    const id = req.session && req.session.passport && req.session.passport.user
    const user = id !== undefined ? byId[id] : undefined
    let who
    if (user !== undefined) {
      who = `<p id="who">Signed in as ${escapeHtml(user)} (user id <span id="user-id">${escapeHtml(id)}</span>)</p>\n` +
        '<form method="post" action="/logout"><button type="submit">Log out</button></form>'
    } else {
      who = '<p id="who">Not signed in</p>\n' + loginForm
    }
    page(res, 'Express test app', `<h1>Express test app</h1>\n${who}`)
  })

  app.get('/login', (req, res) => page(res, 'Log in', `<h1>Log in</h1>\n${loginForm}`))

  app.post('/login', (req, res) => {
    const body = req.body || {}
    const entry = users[body.user]
    if (!entry || entry.password !== body.password) {
      return page(res, 'Log in', `<h1>Log in</h1>\n<p id="error">Wrong user or password</p>\n${loginForm}`, 401)
    }
    req.session.passport = { user: entry.id }
    res.redirect(303, '/')
  })

  const logout = (req, res) => {
    req.session = null
    res.redirect(303, '/')
  }
  app.get('/logout', logout)
  app.post('/logout', logout)

  return app
}

function main (argv) {
  let port = 0
  let host = '127.0.0.1'
  let keys = process.env.COOKIE_KEYS ? process.env.COOKIE_KEYS.split(',') : DEFAULT_KEYS
  let name = 'session'
  let stay = false
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--host') host = argv[++i]
    else if (a === '--keys') keys = argv[++i].split(',')
    else if (a === '--name') name = argv[++i]
    else if (a === '--stay') stay = true
    else if (/^\d+$/.test(a)) port = Number(a)
    else {
      console.error(`unknown argument ${a}`)
      process.exit(2)
    }
  }
  const server = createApp({ keys, name }).listen(port, host, () => {
    process.stdout.write(`listening on ${server.address().port}\n`)
  })
  if (!stay) {
    process.stdin.on('data', () => {})
    process.stdin.on('end', () => {
      server.close()
      process.exit(0)
    })
    process.stdin.resume()
  }
}

module.exports = { createApp, DEFAULT_KEYS, USERS }

if (require.main === module) main(process.argv.slice(2))
