# frozen_string_literal: true
#
# Reads a session cookie back with Rails' own code, to tell what Rails itself makes of a
# minted cookie: ActionDispatch::Session::CookieStore#get_cookie is
# `request.cookie_jar.signed_or_encrypted[key]` (then `stringify_keys!` on the result), and
# that is what this runs, with the env Rails::Application#env_config gives a request.
#
#   ruby rails_read.rb --secret-key-base SKB [--rails 6.1|7.2] [--kdf sha1|sha256]
#        [--cipher aes-256-gcm|aes-256-cbc] [--serializer json|hybrid|marshal|json_allow_marshal]
#        [--cookie _shop_session] --header 'COOKIE HEADER'
#
# Prints JSON: {"rails": VERSION, "session": OBJECT-or-null, "error": null-or-"Class: message"}.
# A GCM reader (the default, use_authenticated_cookie_encryption = true) also reads CBC
# cookies: Rails rotates in the legacy AES-CBC encryptor (cookies.rb
# upgrade_legacy_hmac_aes_cbc_cookies?).

require "optparse"
require "json"

opts = { rails: "6.1", cookie: "_shop_session", cipher: "aes-256-gcm", kdf: "sha1", serializer: "json", header: nil, secret_key_base: nil }
OptionParser.new do |o|
  o.on("--rails VERSION", %w[6.1 7.2]) { |v| opts[:rails] = v }
  o.on("--secret-key-base SKB") { |v| opts[:secret_key_base] = v }
  o.on("--cookie NAME") { |v| opts[:cookie] = v }
  o.on("--cipher CIPHER", %w[aes-256-gcm aes-256-cbc]) { |v| opts[:cipher] = v }
  o.on("--kdf DIGEST", %w[sha1 sha256]) { |v| opts[:kdf] = v }
  o.on("--serializer NAME", %w[json marshal hybrid json_allow_marshal]) { |v| opts[:serializer] = v }
  o.on("--header COOKIE") { |v| opts[:header] = v }
end.parse!(ARGV)
abort("--secret-key-base and --header are required") unless opts[:secret_key_base] && opts[:header]

if opts[:rails] == "7.2"
  root = ENV["FRAMEWORKS_DIR"] || File.expand_path("../../target/frameworks", __dir__)
  libs = Dir[File.join(root, "rails72", "usr/share/rubygems-integration/all/gems", "*", "lib")]
  abort("rails 7.2 not unpacked: run tests/frameworks/setup.sh") if libs.empty?
  libs.sort.reverse_each { |l| $LOAD_PATH.unshift(l) }
elsif opts[:kdf] == "sha256" || opts[:serializer] == "json_allow_marshal"
  abort("--kdf sha256 / --serializer json_allow_marshal need --rails 7.2")
end

require "active_support"
require "active_support/core_ext"
require "active_support/key_generator"
require "active_support/messages/rotation_configuration"
require "action_dispatch"
require "action_dispatch/http/request"
require "action_dispatch/middleware/cookies"
require "rack"
require "rack/mock"

skb = opts[:secret_key_base]
ActiveSupport::KeyGenerator.hash_digest_class = OpenSSL::Digest::SHA256 if opts[:kdf] == "sha256"
env = Rack::MockRequest.env_for("http://www.example.test/", "HTTP_COOKIE" => opts[:header]).merge(
  "action_dispatch.secret_key_base" => skb,
  "action_dispatch.key_generator" => ActiveSupport::CachingKeyGenerator.new(ActiveSupport::KeyGenerator.new(skb, iterations: 1000)),
  "action_dispatch.signed_cookie_salt" => "signed cookie",
  "action_dispatch.encrypted_cookie_salt" => "encrypted cookie",
  "action_dispatch.encrypted_signed_cookie_salt" => "signed encrypted cookie",
  "action_dispatch.authenticated_encrypted_cookie_salt" => "authenticated encrypted cookie",
  "action_dispatch.use_authenticated_cookie_encryption" => opts[:cipher] == "aes-256-gcm",
  "action_dispatch.cookies_serializer" => opts[:serializer].to_sym,
  "action_dispatch.cookies_rotations" => ActiveSupport::Messages::RotationConfiguration.new,
  "action_dispatch.use_cookies_with_metadata" => true,
)

result = { rails: ActionPack.version.to_s, session: nil, error: nil }
begin
  value = ActionDispatch::Request.new(env).cookie_jar.signed_or_encrypted[opts[:cookie]]
  # CookieStore#unpacked_cookie_data calls data.stringify_keys! on what the jar returns.
  value = value.stringify_keys! if value
  result[:session] = value
rescue StandardError => e
  result[:error] = "#{e.class}: #{e.message[0, 200]}"
end
puts JSON.generate(result)
