// njs for the nginx+njs side of the identity scenarios: what invent-proxy does with a
// session JWT, written for nginx (ngx_http_js_module, njs 0.7+).
//
// The `session` cookie is verified as an HS256 JWT (signature over `header.payload`
// with the session secret, `alg` must be HS256, `exp` must not be past), its `sub` and
// `name` are read, and user-hash = lowercase hex HMAC-SHA256(secret key, sub).
// Anything wrong leaves the visitor anonymous. Secrets come from nginx variables set in
// the config ($invent_session_secret, $invent_secret_key).
//
// nginx.conf:
//   js_import identity from identity.js;
//   js_set $invent_identity_attrs identity.attrs;   # ' user-id="…" user-hash="…" user-name="…"' or ''
//   js_set $invent_user_id   identity.userId;       # the pieces, for anyone who wants them
//   js_set $invent_user_hash identity.userHash;
//   js_set $invent_user_name identity.userName;

const crypto = require('crypto');

// njs gives each request its own VM, so this memo lives for one request: however many
// of the variables a request uses, its token is verified once.
let memo;

function b64urlJson(part) {
    return JSON.parse(Buffer.from(part, 'base64url').toString());
}

function verify(r) {
    const token = r.variables.cookie_session;
    if (!token || token.length > 8192) {
        return null;
    }
    const parts = token.split('.');
    if (parts.length !== 3) {
        return null;
    }
    try {
        const header = b64urlJson(parts[0]);
        if (header.alg !== 'HS256') {
            return null;
        }
        const expected = crypto.createHmac('sha256', r.variables.invent_session_secret)
            .update(parts[0] + '.' + parts[1]).digest('base64url');
        if (expected !== parts[2]) {
            return null;
        }
        const claims = b64urlJson(parts[1]);
        if (typeof claims.exp !== 'number' || claims.exp + 30 < Date.now() / 1000) {
            return null; // exp required; 30 s leeway, as invent-proxy's default
        }
        let id = claims.sub;
        if (typeof id === 'number' && Number.isInteger(id)) {
            id = String(id);
        }
        if (typeof id !== 'string' || id.length === 0 || id.length > 256 || /[<>"'`\x00-\x1f]/.test(id)) {
            return null;
        }
        const hash = crypto.createHmac('sha256', r.variables.invent_secret_key).update(id).digest('hex');
        return { id: id, hash: hash, name: typeof claims.name === 'string' ? claims.name : '' };
    } catch (e) {
        return null; // not base64url, not JSON
    }
}

function visitor(r) {
    if (memo === undefined) {
        memo = verify(r);
    }
    return memo;
}

function escapeAttr(s) {
    return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/'/g, '&#39;')
        .replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function attrs(r) {
    const v = visitor(r);
    if (!v) {
        return '';
    }
    let out = ' user-id="' + escapeAttr(v.id) + '" user-hash="' + v.hash + '"';
    if (v.name) {
        out += ' user-name="' + escapeAttr(v.name) + '"';
    }
    return out;
}

function userId(r) { const v = visitor(r); return v ? v.id : ''; }
function userHash(r) { const v = visitor(r); return v ? v.hash : ''; }
function userName(r) { const v = visitor(r); return v ? v.name : ''; }

export default { attrs, userId, userHash, userName };
