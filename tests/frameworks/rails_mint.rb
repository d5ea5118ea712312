# frozen_string_literal: true
#
# Mints a Rails session cookie with Rails' own code: the request goes through
# ActionDispatch::Cookies + ActionDispatch::Session::CookieStore (the cookie store
# middleware pair a Rails app runs), configured the way Rails::Application#env_config
# configures them, and the Set-Cookie it answers with is printed.
#
# Which Rails: `--rails 6.1` (default) loads Debian bookworm's ruby-activesupport /
# ruby-actionpack 6.1.7.10 (apt); `--rails 7.2` loads Debian trixie's 7.2.2.2 packages that
# tests/frameworks/setup.sh unpacks under target/frameworks/rails72 (never installed
# system-wide). 6.1 cannot derive keys with SHA256 (its KeyGenerator is SHA1-only), so
# `--kdf sha256`, `--serializer json_allow_marshal` and `--envelope data`
# need `--rails 7.2`. (`:message_pack` is not offered: ActiveSupport 7.2 requires the msgpack
# gem >= 1.7.0, and Debian has only 1.4.2 for bookworm's Ruby 3.1.)
#
# Output: the Cookie request-header value ("NAME=VALUE", VALUE exactly as it is on the
# wire, i.e. Rack-escaped), or with --json a JSON object with the details.
#
# Examples (see tests/frameworks/README.md for the full list):
#   ruby rails_mint.rb --secret-key-base "$SKB" --user-id 42                 # 6.1 defaults: GCM, SHA1 KDF, _rails envelope, JSON
#   ruby rails_mint.rb --rails 7.2 --kdf sha256 --secret-key-base "$SKB" --user-id 42
#   ruby rails_mint.rb --cipher aes-256-cbc --envelope bare ...               # Rails 4.0-5.1 shape
#   ruby rails_mint.rb --cookie other_session --present-as _shop_session ...  # wrong purpose
#   ruby rails_mint.rb --expires-in -60 ...                                   # expired (exp in the past)
#   ruby rails_mint.rb --serializer marshal ...                               # Marshal session

require "optparse"
require "json"

opts = {
  rails: "6.1",
  secret_key_base: nil,
  cookie: "_shop_session",
  present_as: nil,
  cipher: "aes-256-gcm",
  kdf: "sha1",
  envelope: "metadata",
  serializer: "json",
  user_id: 1,
  user_name: nil,
  devise_salt: "$2a$12$K0ByB.6YI2/OYrB4fQOYLe",
  data: nil,
  raw_value: nil,
  expires_in: nil,
  tamper: false,
  json: false,
}

parser = OptionParser.new do |o|
  o.banner = "usage: ruby rails_mint.rb --secret-key-base SKB [options]"
  o.on("--rails VERSION", %w[6.1 7.2], "6.1 (Debian bookworm, default) or 7.2 (Debian trixie, unpacked by setup.sh)") { |v| opts[:rails] = v }
  o.on("--secret-key-base SKB", "the app's secret_key_base (required)") { |v| opts[:secret_key_base] = v }
  o.on("--cookie NAME", "session cookie name = CookieStore key (default _shop_session); the purpose is cookie.NAME") { |v| opts[:cookie] = v }
  o.on("--present-as NAME", "print the cookie under another name (a wrong-purpose cookie)") { |v| opts[:present_as] = v }
  o.on("--cipher CIPHER", %w[aes-256-gcm aes-256-cbc], "aes-256-gcm (use_authenticated_cookie_encryption = true, 5.2+) or aes-256-cbc (false: 4.0-5.1)") { |v| opts[:cipher] = v }
  o.on("--kdf DIGEST", %w[sha1 sha256], "PBKDF2 digest of the KeyGenerator: sha1 (<= 6.1) or sha256 (7.0+ defaults; needs --rails 7.2)") { |v| opts[:kdf] = v }
  o.on("--envelope KIND", %w[metadata bare data], "metadata: use_cookies_with_metadata = true (6.0+: _rails envelope with pur); bare: false (4.0-5.2); data: the 7.1+ _rails.data envelope, written with MessageEncryptor directly (needs --rails 7.2; the 7.1+ cookie jar itself never writes it)") { |v| opts[:envelope] = v }
  o.on("--serializer NAME", %w[json marshal hybrid json_allow_marshal], "cookies_serializer (default json)") { |v| opts[:serializer] = v }
  o.on("--user-id ID", Integer, "Devise/Warden user id: session['warden.user.user.key'] = [[ID], SALT] (default 1)") { |v| opts[:user_id] = v }
  o.on("--no-user", "no warden key in the session (an anonymous session; Rails writes it only with --data)") { opts[:user_id] = nil }
  o.on("--user-name NAME", "also session['user_name'] = NAME") { |v| opts[:user_name] = v }
  o.on("--devise-salt SALT", "the authenticatable_salt stored beside the id") { |v| opts[:devise_salt] = v }
  o.on("--data JSON", "extra session keys (a JSON object), merged into the session") { |v| opts[:data] = JSON.parse(v) }
  o.on("--raw-value JSON", "write this JSON value with cookies.encrypted[NAME] = value instead of a session (e.g. a non-object payload)") { |v| opts[:raw_value] = JSON.parse(v) }
  o.on("--expires-in SECONDS", Integer, "CookieStore expire_after: exp in the envelope (negative: already expired)") { |v| opts[:expires_in] = v }
  o.on("--tamper", "flip one character of the ciphertext after minting (not Rails code: a tampered cookie)") { opts[:tamper] = true }
  o.on("--json", "print a JSON object with the details instead of the Cookie header value") { opts[:json] = true }
end
parser.parse!(ARGV)
abort(parser.to_s) if opts[:secret_key_base].nil?

if opts[:rails] == "7.2"
  root = ENV["FRAMEWORKS_DIR"] || File.expand_path("../../target/frameworks", __dir__)
  base = File.join(root, "rails72", "usr/share/rubygems-integration/all/gems")
  libs = Dir[File.join(base, "*", "lib")]
  abort("rails 7.2 not unpacked under #{base}: run tests/frameworks/setup.sh") if libs.empty?
  # Put the unpacked 7.2 gems (activesupport, actionpack, concurrent-ruby, ...) before the
  # system ones: Ruby's require searches $LOAD_PATH before Rubygems activates a gem.
  libs.sort.reverse_each { |l| $LOAD_PATH.unshift(l) }
elsif opts[:kdf] == "sha256" || opts[:serializer] == "json_allow_marshal" || opts[:envelope] == "data"
  abort("--kdf sha256, --serializer json_allow_marshal and --envelope data need Rails 7.x code: add --rails 7.2")
end

require "active_support"
require "active_support/core_ext"
require "active_support/key_generator"
require "active_support/message_encryptor"
require "active_support/messages/rotation_configuration"
require "action_dispatch"
require "action_dispatch/http/request"
require "action_dispatch/middleware/cookies"
require "action_dispatch/middleware/session/cookie_store"
require "rack"
require "rack/mock"

rails_version = ActiveSupport.respond_to?(:version) ? ActiveSupport.version.to_s : ActiveSupport::VERSION::STRING

skb = opts[:secret_key_base]
# Rails::Application#key_generator: KeyGenerator.new(secret_key_base, iterations: 1000),
# and with `config.active_support.key_generator_hash_digest_class = OpenSSL::Digest::SHA256`
# (load_defaults 7.0+) the railtie sets KeyGenerator.hash_digest_class, which is what we set.
if opts[:kdf] == "sha256"
  ActiveSupport::KeyGenerator.hash_digest_class = OpenSSL::Digest::SHA256
end
key_generator = ActiveSupport::CachingKeyGenerator.new(ActiveSupport::KeyGenerator.new(skb, iterations: 1000))
# load_defaults 7.1+ sets `active_support.use_message_serializer_for_metadata = true`; set it
# on 7.x so the cookie-jar variants are what a 7.1+ app writes (still `_rails.message`: the
# jar's encryptor has NullSerializer, which Metadata#use_message_serializer_for_metadata?
# does not count as an envelope serializer).
if ActiveSupport::Messages::Metadata.respond_to?(:use_message_serializer_for_metadata=)
  ActiveSupport::Messages::Metadata.use_message_serializer_for_metadata = true
end

serializer = opts[:serializer].to_sym

# What Rails::Application#env_config puts in every request's env (railties application.rb),
# with ActionDispatch::Railtie's default salts (actionpack railtie.rb).
env_config = {
  "action_dispatch.secret_key_base" => skb,
  "action_dispatch.key_generator" => key_generator,
  "action_dispatch.signed_cookie_salt" => "signed cookie",
  "action_dispatch.encrypted_cookie_salt" => "encrypted cookie",
  "action_dispatch.encrypted_signed_cookie_salt" => "signed encrypted cookie",
  "action_dispatch.authenticated_encrypted_cookie_salt" => "authenticated encrypted cookie",
  "action_dispatch.use_authenticated_cookie_encryption" => opts[:cipher] == "aes-256-gcm",
  "action_dispatch.encrypted_cookie_cipher" => nil,
  "action_dispatch.signed_cookie_digest" => nil,
  "action_dispatch.cookies_serializer" => serializer,
  "action_dispatch.cookies_digest" => nil,
  "action_dispatch.cookies_rotations" => ActiveSupport::Messages::RotationConfiguration.new,
  "action_dispatch.use_cookies_with_metadata" => opts[:envelope] == "metadata",
}

session = {}
session["warden.user.user.key"] = [[opts[:user_id]], opts[:devise_salt]] if opts[:user_id]
session["user_name"] = opts[:user_name] if opts[:user_name]
session.merge!(opts[:data]) if opts[:data]

name = opts[:cookie]
set_cookie = nil
value = nil

if opts[:envelope] == "data"
  # Rails 7.1+ `_rails.data` envelope: ActiveSupport::Messages::Metadata writes it when
  # `use_message_serializer_for_metadata` is true *and* the codec's serializer is a real one.
  # The cookie jar passes NullSerializer to its MessageEncryptor (cookies.rb SERIALIZER), so
  # cookies keep the `_rails.message` envelope even on 7.1+; this variant is what a 7.1+
  # MessageEncryptor with serializer :json writes, keyed and purposed like the cookie jar.
  ActiveSupport::Messages::Metadata.use_message_serializer_for_metadata = true
  cipher = opts[:cipher]
  if cipher == "aes-256-gcm"
    secret = key_generator.generate_key("authenticated encrypted cookie", ActiveSupport::MessageEncryptor.key_len(cipher))
    enc = ActiveSupport::MessageEncryptor.new(secret, cipher: cipher, serializer: (serializer == :hybrid ? :json_allow_marshal : serializer))
  else
    secret = key_generator.generate_key("encrypted cookie", ActiveSupport::MessageEncryptor.key_len(cipher))
    sign_secret = key_generator.generate_key("signed encrypted cookie")
    enc = ActiveSupport::MessageEncryptor.new(secret, sign_secret, cipher: cipher, serializer: (serializer == :hybrid ? :json_allow_marshal : serializer))
  end
  payload = opts[:raw_value].nil? ? session.merge("session_id" => SecureRandom.hex(16)) : opts[:raw_value]
  meta = { purpose: "cookie.#{name}" }
  meta[:expires_in] = opts[:expires_in] if opts[:expires_in]
  value = enc.encrypt_and_sign(payload, **meta)
  set_cookie = "#{Rack::Utils.escape(name)}=#{Rack::Utils.escape(value)}; path=/; HttpOnly"
else
  inner = lambda do |env|
    if opts[:raw_value].nil?
      rack_session = env["rack.session"]
      session.each { |k, v| rack_session[k] = v }
    else
      req = ActionDispatch::Request.new(env)
      jar_opts = { value: opts[:raw_value] }
      jar_opts[:expires] = opts[:expires_in].seconds.from_now if opts[:expires_in]
      req.cookie_jar.encrypted[name] = jar_opts
    end
    [200, { "Content-Type" => "text/plain" }, ["ok"]]
  end
  store_opts = { key: name }
  store_opts[:expire_after] = opts[:expires_in] if opts[:expires_in]
  # Rails' default middleware order: ActionDispatch::Cookies wraps the session store.
  app = ActionDispatch::Cookies.new(ActionDispatch::Session::CookieStore.new(inner, store_opts))
  env = Rack::MockRequest.env_for("http://www.example.test/login", { "REMOTE_ADDR" => "127.0.0.1" }.merge(env_config))
  _status, headers, _body = app.call(env)
  lines = headers["Set-Cookie"] || headers["set-cookie"]
  # Rack writes no cookie for a session nothing was stored in (`--no-user` alone).
  abort("Rails set no cookie: the session is empty (give --data with --no-user)") if lines.nil?
  lines = lines.split("\n") if lines.is_a?(String)
  set_cookie = lines.find { |l| l.start_with?("#{Rack::Utils.escape(name)}=") } or abort("no Set-Cookie for #{name}: #{lines.inspect}")
  value = Rack::Utils.unescape(set_cookie.split(";", 2).first.split("=", 2).last)
end

if opts[:tamper]
  # Flip one base64 character in the middle of the first part (the ciphertext); keep it valid base64.
  i = value.index("--") / 2
  value = value.dup
  value[i] = value[i] == "A" ? "B" : "A"
end

wire_value = Rack::Utils.escape(value)
out_name = opts[:present_as] || name
header = "#{Rack::Utils.escape(out_name)}=#{wire_value}"

if opts[:json]
  puts JSON.pretty_generate(
    rails: rails_version,
    actionpack: ActionPack.version.to_s,
    cookie_header: header,
    set_cookie: set_cookie,
    name: out_name,
    purpose: opts[:envelope] == "bare" ? nil : "cookie.#{name}",
    wire_value: wire_value,
    value: value,
    secret_key_base: skb,
    cipher: opts[:cipher],
    kdf: opts[:kdf],
    envelope: opts[:envelope],
    serializer: opts[:serializer],
    expires_in: opts[:expires_in],
    tampered: opts[:tamper],
    session: opts[:raw_value].nil? ? session : nil,
    raw_value: opts[:raw_value],
  )
else
  puts header
end
