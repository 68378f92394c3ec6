// JWT authorizers: keys generated at test time with OpenSSL, tokens signed
// here (and, where available, by PyJWT and the openssl CLI as independent
// implementations), verified by JwtVerifier.
#include <catch2/catch.hpp>

#include "sluice/gateway/authorizers.hpp"

#include <nlohmann/json.hpp>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

using namespace sluice;
using namespace sluice::gateway;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// ---- a small JWS signer ------------------------------------------------------------

std::string b64url(std::string_view in) {
  static constexpr char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                 static_cast<unsigned char>(in[i + 2]);
    out += tbl[(v >> 18) & 63];
    out += tbl[(v >> 12) & 63];
    out += tbl[(v >> 6) & 63];
    out += tbl[v & 63];
  }
  if (i + 1 == in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += tbl[(v >> 18) & 63];
    out += tbl[(v >> 12) & 63];
  } else if (i + 2 == in.size()) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += tbl[(v >> 18) & 63];
    out += tbl[(v >> 12) & 63];
    out += tbl[(v >> 6) & 63];
  }
  return out;
}

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

Pkey rsa_keygen() { return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048))); }
Pkey ec_keygen() { return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")); }

std::string bn_bytes(EVP_PKEY* k, const char* name, int pad = 0) {
  BIGNUM* bn = nullptr;
  REQUIRE(EVP_PKEY_get_bn_param(k, name, &bn) == 1);
  int len = pad ? pad : BN_num_bytes(bn);
  std::string out(static_cast<std::size_t>(len), '\0');
  REQUIRE(BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), len) == len);
  BN_free(bn);
  return out;
}

json rsa_jwk(EVP_PKEY* k, const std::string& kid) {
  json j{{"kty", "RSA"}, {"n", b64url(bn_bytes(k, OSSL_PKEY_PARAM_RSA_N))}, {"e", b64url(bn_bytes(k, OSSL_PKEY_PARAM_RSA_E))}};
  if (!kid.empty()) j["kid"] = kid;
  return j;
}

json ec_jwk(EVP_PKEY* k, const std::string& kid) {
  json j{{"kty", "EC"},
         {"crv", "P-256"},
         {"x", b64url(bn_bytes(k, OSSL_PKEY_PARAM_EC_PUB_X, 32))},
         {"y", b64url(bn_bytes(k, OSSL_PKEY_PARAM_EC_PUB_Y, 32))}};
  if (!kid.empty()) j["kid"] = kid;
  return j;
}

// DER ECDSA-Sig-Value -> JOSE R || S.
std::string der_to_jose(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  REQUIRE(sig);
  const BIGNUM *r = nullptr, *s = nullptr;
  ECDSA_SIG_get0(sig, &r, &s);
  std::string out(64, '\0');
  BN_bn2binpad(r, reinterpret_cast<unsigned char*>(out.data()), 32);
  BN_bn2binpad(s, reinterpret_cast<unsigned char*>(out.data()) + 32, 32);
  ECDSA_SIG_free(sig);
  return out;
}

std::string raw_sign(EVP_PKEY* k, const EVP_MD* md, const std::string& data) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  REQUIRE(EVP_DigestSignInit(ctx, nullptr, md, nullptr, k) == 1);
  size_t len = 0;
  REQUIRE(EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1);
  std::string sig(len, '\0');
  REQUIRE(EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                         reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1);
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  return sig;
}

// header.payload.signature; the header gets alg (and kid when given).
std::string sign(EVP_PKEY* k, const std::string& alg, const json& claims, const std::string& kid = "k1",
                 json header = json::object()) {
  header["alg"] = alg;
  if (!header.contains("typ")) header["typ"] = "JWT";
  if (!kid.empty()) header["kid"] = kid;
  std::string input = b64url(header.dump()) + "." + b64url(claims.dump());
  const EVP_MD* md = alg == "RS384" ? EVP_sha384() : alg == "RS512" ? EVP_sha512() : EVP_sha256();
  std::string sig = raw_sign(k, md, input);
  if (alg == "ES256") sig = der_to_jose(sig);
  return input + "." + b64url(sig);
}

// ---- shared keys and configuration -------------------------------------------------

struct Keys {
  Pkey rsa = rsa_keygen();
  Pkey rsa_other = rsa_keygen();
  Pkey ec = ec_keygen();
  Pkey ec_other = ec_keygen();
};

Keys& keys() {
  static Keys k;  // RSA key generation is slow: once per test binary
  return k;
}

const std::string issuer = "https://cognito-idp.eu-west-3.amazonaws.com/eu-west-3_Example";
const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));

json jwks() {
  auto& k = keys();
  return json{{"keys", {rsa_jwk(k.rsa.get(), "k1"), ec_jwk(k.ec.get(), "e1")}}};
}

stack::JwtConfig config(const json& set = jwks()) {
  stack::JwtConfig c;
  c.issuer = issuer;
  c.audience = {"client-a", "client-b"};
  c.jwks_inline = set.dump();
  return c;
}

json claims() {
  return json{{"iss", issuer},      {"aud", "client-a"},      {"sub", "user-1"},
              {"exp", 1700003600},  {"iat", 1699999000},     {"scope", "movies/read movies/write"},
              {"email_verified", true}};
}

const JwtVerifier& verifier() {
  static JwtVerifier v(config());
  return v;
}

JwtVerifier::Result check(const std::string& token, const std::vector<std::string>& scopes = {}) {
  JwtVerifier::Result r;
  REQUIRE_NOTHROW(r = verifier().verify(token, scopes, now));
  return r;
}

std::string rs256(const json& c = claims(), const std::string& kid = "k1") {
  return sign(keys().rsa.get(), "RS256", c, kid);
}

// ---- running independent implementations ---------------------------------------------

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("sluice-jwt-test-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name, std::ios::binary) << text;
    return path / name;
  }
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs a shell command; its stdout, or nullopt when it failed.
std::optional<std::string> run(const std::string& cmd) {
  FILE* f = ::popen(cmd.c_str(), "r");
  if (!f) return std::nullopt;
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, f)) out.append(buf, n);
  int rc = ::pclose(f);
  if (rc != 0) return std::nullopt;
  return out;
}

// Debian's python3 with PyJWT and cryptography (python3-jwt), when installed.
const char* const python = "/usr/bin/python3 -I";

bool have_pyjwt() {
  static bool have = run(std::string(python) + " -c 'import jwt, cryptography' 2>/dev/null").has_value();
  return have;
}

bool have_openssl_cli() {
  static bool have = run("openssl version >/dev/null 2>&1").has_value();
  return have;
}

std::string private_pem(EVP_PKEY* k) {
  BIO* bio = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_PrivateKey(bio, k, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(len));
  BIO_free(bio);
  return out;
}

}  // namespace

// ---- good tokens ------------------------------------------------------------------

TEST_CASE("JWT: a good RS256 token verifies, with its claims and scopes", "[jwt]") {
  auto r = check(rs256());
  REQUIRE(r.ok);
  CHECK(r.error.empty());
  CHECK_FALSE(r.insufficient_scope);
  CHECK(r.claims["sub"] == "user-1");
  CHECK(r.claims["exp"] == 1700003600);
  CHECK(r.scopes == std::vector<std::string>{"movies/read", "movies/write"});
}

TEST_CASE("JWT: a good ES256 token verifies", "[jwt]") {
  auto r = check(sign(keys().ec.get(), "ES256", claims(), "e1"));
  REQUIRE(r.ok);
  CHECK(r.claims["sub"] == "user-1");
}

TEST_CASE("JWT: RS384 and RS512 verify against the same RSA key", "[jwt]") {
  CHECK(check(sign(keys().rsa.get(), "RS384", claims(), "k1")).ok);
  CHECK(check(sign(keys().rsa.get(), "RS512", claims(), "k1")).ok);
}

TEST_CASE("JWT: the token may come with or without \"Bearer \"", "[jwt]") {
  const std::string t = rs256();
  CHECK(check(t).ok);
  CHECK(check("Bearer " + t).ok);
  CHECK(check("bearer " + t).ok);
  CHECK(check("  Bearer   " + t + "  ").ok);
  CHECK_FALSE(check("Basic " + t).ok);
}

TEST_CASE("JWT: a token without a kid is refused, as AWS requires one", "[jwt]") {
  auto r = check(rs256(claims(), ""));
  CHECK_FALSE(r.ok);
  CHECK(r.error.find("kid") != std::string::npos);
  CHECK_FALSE(check(sign(keys().ec.get(), "ES256", claims(), "")).ok);
}

// ---- bad signatures ----------------------------------------------------------------

TEST_CASE("JWT: a token signed by another key is refused", "[jwt]") {
  auto r = check(sign(keys().rsa_other.get(), "RS256", claims(), "k1"));
  CHECK_FALSE(r.ok);
  CHECK(r.error == "the token signature is invalid");
  r = check(sign(keys().ec_other.get(), "ES256", claims(), "e1"));
  CHECK_FALSE(r.ok);
  CHECK(r.error == "the token signature is invalid");
  // A kid naming a key of the other type.
  r = check(sign(keys().ec.get(), "ES256", claims(), "k1"));
  CHECK_FALSE(r.ok);
}

TEST_CASE("JWT: a tampered payload or header is refused", "[jwt]") {
  std::string t = rs256();
  auto d1 = t.find('.'), d2 = t.rfind('.');
  json forged = claims();
  forged["sub"] = "admin";
  std::string tampered = t.substr(0, d1 + 1) + b64url(forged.dump()) + t.substr(d2);
  CHECK(check(tampered).error == "the token signature is invalid");

  std::string es = sign(keys().ec.get(), "ES256", claims(), "e1");
  d1 = es.find('.');
  d2 = es.rfind('.');
  CHECK_FALSE(check(es.substr(0, d1 + 1) + b64url(forged.dump()) + es.substr(d2)).ok);

  // Changing one signature character (in the middle: the last one of an
  // unpadded base64url string may carry only padding bits).
  std::string flipped = t;
  char& c = flipped[d2 + 1 + (flipped.size() - d2 - 1) / 2];
  c = c == 'A' ? 'B' : 'A';
  CHECK_FALSE(check(flipped).ok);
  // The signature of an RS256 token under an ES256 header.
  json h{{"alg", "ES256"}, {"kid", "e1"}};
  CHECK_FALSE(check(b64url(h.dump()) + t.substr(d1)).ok);
  // An ES256 signature in DER instead of JOSE form.
  std::string input = es.substr(0, es.rfind('.'));
  std::string der = raw_sign(keys().ec.get(), EVP_sha256(), input);
  CHECK(check(input + "." + b64url(der)).error == "the token signature is invalid");
}

TEST_CASE("JWT: alg none and HMAC algorithms are refused", "[jwt]") {
  json h{{"alg", "none"}, {"typ", "JWT"}};
  std::string unsigned_token = b64url(h.dump()) + "." + b64url(claims().dump()) + ".";
  auto r = check(unsigned_token);
  CHECK_FALSE(r.ok);
  CHECK(r.error == "signing method none is invalid");
  h["alg"] = "None";
  CHECK_FALSE(check(b64url(h.dump()) + "." + b64url(claims().dump()) + ".").ok);
  h.erase("alg");
  CHECK(check(b64url(h.dump()) + "." + b64url(claims().dump()) + ".").error == "signing method none is invalid");

  // HS256 keyed with the public modulus: the classic key-confusion forgery.
  json hs{{"alg", "HS256"}, {"kid", "k1"}};
  std::string input = b64url(hs.dump()) + "." + b64url(claims().dump());
  std::string secret = rsa_jwk(keys().rsa.get(), "k1")["n"];
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(input.data()),
       input.size(), mac, &mac_len);
  r = check(input + "." + b64url(std::string(reinterpret_cast<char*>(mac), mac_len)));
  CHECK_FALSE(r.ok);
  CHECK(r.error == "signing method HS256 is invalid");

  for (const char* alg : {"PS256", "ES384", "EdDSA", "rs256"}) {
    INFO(alg);
    json other{{"alg", alg}, {"kid", "k1"}};
    CHECK_FALSE(check(b64url(other.dump()) + "." + b64url(claims().dump()) + ".AAAA").ok);
  }
}

TEST_CASE("JWT: an unknown kid is refused", "[jwt]") {
  auto r = check(rs256(claims(), "not-a-key"));
  CHECK_FALSE(r.ok);
  CHECK(r.error == "the token's kid does not match any key of the authorizer's JWKS");
  json h{{"alg", "RS256"}, {"kid", 7}};
  CHECK_FALSE(check(b64url(h.dump()) + "." + b64url(claims().dump()) + ".AAAA").ok);
}

// ---- claims --------------------------------------------------------------------------

TEST_CASE("JWT: exp must be after now and nbf not after now (no clock skew)", "[jwt]") {
  json c = claims();
  c["exp"] = 1700000000;  // == now
  CHECK(check(rs256(c)).error == "the token has expired");
  c["exp"] = 1699999999;
  CHECK(check(rs256(c)).error == "the token has expired");
  c["exp"] = 1700000001;
  CHECK(check(rs256(c)).ok);
  c["exp"] = 1700000000.5;  // fractional NumericDate
  CHECK(check(rs256(c)).ok);
  c["exp"] = "1700003600";
  CHECK_FALSE(check(rs256(c)).ok);

  c = claims();
  c["nbf"] = 1700000001;
  CHECK(check(rs256(c)).error == "the token is not valid yet");
  c["nbf"] = 1700000000;  // == now
  CHECK(check(rs256(c)).ok);
  c["nbf"] = 1600000000;
  CHECK(check(rs256(c)).ok);

  // iat must be before now too (AWS's list of the claims it checks).
  c = claims();
  c["iat"] = 1700003600;
  CHECK(check(rs256(c)).error == "the token was issued in the future");
  c["iat"] = 1700000000;  // == now
  CHECK(check(rs256(c)).ok);
  c["iat"] = "1699990000";
  CHECK_FALSE(check(rs256(c)).ok);

  // Neither claim is required (Cognito tokens have no nbf).
  c = claims();
  c.erase("exp");
  CHECK(check(rs256(c)).ok);
}

TEST_CASE("JWT: iss must be the configured issuer exactly", "[jwt]") {
  for (const json& iss : {json("https://evil.example.com"), json(issuer + "/"), json(nullptr), json(42)}) {
    INFO(iss.dump());
    json c = claims();
    c["iss"] = iss;
    CHECK(check(rs256(c)).error == "the token does not have a valid issuer");
  }
  json c = claims();
  c.erase("iss");
  CHECK(check(rs256(c)).error == "the token does not have a valid issuer");
}

TEST_CASE("JWT: aud must hold an accepted audience; client_id counts only without aud", "[jwt]") {
  json c = claims();
  c["aud"] = "client-z";
  CHECK(check(rs256(c)).error == "the token does not have a valid audience");
  c["aud"] = json::array({"client-z", "client-b"});
  CHECK(check(rs256(c)).ok);
  c["aud"] = json::array({"client-z"});
  CHECK_FALSE(check(rs256(c)).ok);
  c["aud"] = json::array();
  CHECK_FALSE(check(rs256(c)).ok);

  // Cognito access tokens: no aud, client_id instead.
  c = claims();
  c.erase("aud");
  c["client_id"] = "client-b";
  CHECK(check(rs256(c)).ok);
  c["client_id"] = "client-z";
  CHECK(check(rs256(c)).error == "the token does not have a valid audience");
  c.erase("client_id");
  CHECK(check(rs256(c)).error == "the token does not have a valid audience");

  // When both are present, aud decides.
  c = claims();
  c["aud"] = "client-z";
  c["client_id"] = "client-a";
  CHECK_FALSE(check(rs256(c)).ok);
}

TEST_CASE("JWT: a route's scopes: at least one must be in the token", "[jwt]") {
  const std::string t = rs256();  // scope "movies/read movies/write"
  CHECK(check(t, {}).ok);
  CHECK(check(t, {"movies/read"}).ok);
  CHECK(check(t, {"admin", "movies/write"}).ok);  // any one is enough

  auto r = check(t, {"admin"});
  CHECK_FALSE(r.ok);
  CHECK(r.insufficient_scope);
  CHECK(r.claims["sub"] == "user-1");  // the token itself was fine
  CHECK(r.scopes == std::vector<std::string>{"movies/read", "movies/write"});
  CHECK(jwt_www_authenticate(r, {"admin"}).rfind("Bearer scope=\"admin\" error=\"insufficient_scope\"", 0) == 0);

  // scp as a list (Okta) or as a space-separated string (Entra ID).
  json c = claims();
  c.erase("scope");
  c["scp"] = json::array({"orders", "admin"});
  CHECK(check(rs256(c), {"admin"}).ok);
  c["scp"] = "orders admin";
  CHECK(check(rs256(c), {"admin"}).ok);
  c.erase("scp");
  r = check(rs256(c), {"admin"});  // an ID token has no scopes at all
  CHECK_FALSE(r.ok);
  CHECK(r.insufficient_scope);
  CHECK(r.scopes.empty());
  // Scopes match exactly, case included.
  CHECK_FALSE(check(t, {"Movies/Read"}).ok);
}

// ---- malformed tokens -------------------------------------------------------------------

TEST_CASE("JWT: malformed tokens are refused without throwing", "[jwt]") {
  const std::string good = rs256();
  const auto d1 = good.find('.');
  const std::string payload_and_sig = good.substr(d1);
  const std::string segments = "token contains an invalid number of segments";
  CHECK(check("").error == segments);
  CHECK(check("Bearer ").error == segments);
  CHECK(check("abc").error == segments);
  CHECK(check(good.substr(0, good.rfind('.'))).error == segments);  // two parts
  CHECK(check(good + ".extra").error == segments);                  // four parts
  CHECK(check("a.b.c.d.e").error == segments);                      // JWE shape
  CHECK(check("..").error == "the token header is not a JSON object");
  CHECK(check("!!!" + payload_and_sig).error == "the token header is not valid base64url");
  CHECK(check("A" + payload_and_sig).error == "the token header is not valid base64url");  // impossible length
  CHECK(check(b64url("not json") + payload_and_sig).error == "the token header is not a JSON object");
  CHECK(check(b64url("[\"RS256\"]") + payload_and_sig).error == "the token header is not a JSON object");
  const std::string header = good.substr(0, d1);
  CHECK(check(header + "." + b64url("{\"iss\":") + ".AAAA").error == "the token payload is not a JSON object");
  CHECK(check(header + ".***." + "AAAA").error == "the token payload is not valid base64url");
  CHECK(check(good.substr(0, good.rfind('.')) + ".%%%").error == "the token signature is not valid base64url");
  CHECK_FALSE(check(good.substr(0, good.rfind('.')) + ".").ok);  // empty signature

  // Deeply nested JSON, huge tokens, control characters, NUL bytes.
  CHECK_FALSE(check(header + "." + b64url(std::string(20000, '[') + std::string(20000, ']')) + ".AAAA").ok);
  CHECK_FALSE(check(std::string(100000, 'a') + "." + std::string(100000, 'b') + ".c").ok);
  CHECK_FALSE(check(std::string("a\0b.c\r\n.d", 9)).ok);
  json crit{{"alg", "RS256"}, {"kid", "k1"}, {"crit", {"exp"}}, {"exp", 1}};
  CHECK_FALSE(check(sign(keys().rsa.get(), "RS256", claims(), "k1", crit)).ok);
}

// ---- configuration ---------------------------------------------------------------------

TEST_CASE("JWT: JWKS problems are configuration errors, thrown by the constructor", "[jwt]") {
  auto& k = keys();
  auto build = [](const std::string& text) {
    stack::JwtConfig c = config();
    c.jwks_inline = text;
    JwtVerifier v(c);
  };
  CHECK_THROWS_WITH(build("not json"), Catch::Contains("not a JSON object"));
  CHECK_THROWS_WITH(build("{}"), Catch::Contains("\"keys\""));
  CHECK_THROWS_WITH(build(R"({"keys":{}})"), Catch::Contains("\"keys\""));
  CHECK_THROWS_WITH(build(R"({"keys":[]})"), Catch::Contains("no RSA or EC P-256 signing key"));
  CHECK_THROWS_WITH(build(R"({"keys":[1]})"), Catch::Contains("key 0"));
  CHECK_THROWS_WITH(build(R"({"keys":[{"kty":"RSA","kid":"x","n":"!!","e":"AQAB"}]})"), Catch::Contains("kid x"));
  CHECK_THROWS(build(R"({"keys":[{"kty":"RSA","e":"AQAB"}]})"));
  // A point that is not on the curve.
  json bad_ec = ec_jwk(k.ec.get(), "e1");
  bad_ec["y"] = bad_ec["x"];
  CHECK_THROWS_WITH(build(json{{"keys", {bad_ec}}}.dump()), Catch::Contains("P-256"));
  // Only keys sluice cannot use: nothing to verify with.
  CHECK_THROWS(build(R"({"keys":[{"kty":"oct","k":"c2VjcmV0"},{"kty":"OKP","crv":"Ed25519","x":"AA"}]})"));

  stack::JwtConfig none = config();
  none.jwks_inline.clear();
  CHECK_THROWS_WITH(JwtVerifier(none), Catch::Contains("jwks"));
  stack::JwtConfig missing = config();
  missing.jwks_inline.clear();
  missing.jwks_file = "/nonexistent/jwks.json";
  CHECK_THROWS_WITH(JwtVerifier(missing), Catch::Contains("/nonexistent/jwks.json"));
}

TEST_CASE("JWT: encryption keys and unusable key types are skipped; jwks_file works", "[jwt]") {
  auto& k = keys();
  json enc = rsa_jwk(k.rsa_other.get(), "k1");
  enc["use"] = "enc";
  json set{{"keys",
            {enc, json{{"kty", "oct"}, {"k", "c2VjcmV0"}, {"kid", "h"}}, json{{"kty", "EC"}, {"crv", "P-384"}, {"x", "AA"}, {"y", "AA"}},
             rsa_jwk(k.rsa.get(), "k1")}}};
  set["keys"][3]["alg"] = "RS256";
  set["keys"][3]["use"] = "sig";
  TempDir dir;
  stack::JwtConfig c = config();
  c.jwks_inline.clear();
  c.jwks_file = dir.write("jwks.json", set.dump(2));
  JwtVerifier v(c);
  CHECK(v.verify(rs256(), {}, now).ok);
  // A key whose JWK says RS256 does not verify RS512 tokens.
  CHECK_FALSE(v.verify(sign(k.rsa.get(), "RS512", claims(), "k1"), {}, now).ok);
}

// ---- what the integration sees ----------------------------------------------------------

TEST_CASE("JWT: jwt_authorizer_context renders claims as API Gateway does", "[jwt]") {
  json c = claims();
  c["cognito:groups"] = json::array({"admin", "poweruser"});
  c["address"] = {{"country", "FR"}};
  c["nickname"] = nullptr;
  c["ratio"] = 0.5;
  c["nested"] = json::parse(R"({"y": [1, 2], "x": {"b": true, "a": null}})");
  c["mixed"] = json::parse(R"([true, null, 1.5, [1, "s t"], {"k": "v"}])");
  auto r = check(rs256(c));
  REQUIRE(r.ok);
  json ctx = jwt_authorizer_context(r, true);
  const json& cl = ctx["jwt"]["claims"];
  CHECK(cl["sub"] == "user-1");
  CHECK(cl["exp"] == "1700003600");
  CHECK(cl["email_verified"] == "true");
  CHECK(cl["cognito:groups"] == "[admin poweruser]");
  CHECK(cl["address"] == "map[country:FR]");
  CHECK(cl["nested"] == "map[x:map[a:<nil> b:true] y:[1 2]]");
  CHECK(cl["mixed"] == "[true <nil> 1.5 [1 s t] map[k:v]]");
  CHECK(cl["ratio"] == "0.5");
  CHECK_FALSE(cl.contains("nickname"));
  CHECK(ctx["jwt"]["scopes"] == json::array({"movies/read", "movies/write"}));
  // A route without authorization scopes gets null, whatever the token's scope claim.
  CHECK(jwt_authorizer_context(r, false)["jwt"]["scopes"].is_null());

  json id_token = claims();
  id_token.erase("scope");
  r = check(rs256(id_token));
  REQUIRE(r.ok);
  CHECK(jwt_authorizer_context(r, true)["jwt"]["scopes"] == json::array());
}

TEST_CASE("JWT: jwt_www_authenticate is the header AWS sends with a 401", "[jwt]") {
  json c = claims();
  c["aud"] = "client-z";
  auto r = check(rs256(c));
  CHECK(jwt_www_authenticate(r, {}) ==
        "Bearer scope=\"\" error=\"invalid_token\" error_description=\"the token does not have a valid audience\"");
  JwtVerifier::Result odd;
  odd.error = "quote \" and\r\nnewline";
  CHECK(jwt_www_authenticate(odd, {"a", "b"}) ==
        "Bearer scope=\"a b\" error=\"invalid_token\" error_description=\"quote ? and??newline\"");
}

// ---- independent implementations ----------------------------------------------------------

TEST_CASE("JWT: tokens and JWKS made by PyJWT verify here, and ours verify in PyJWT", "[jwt]") {
  if (!have_pyjwt()) {
    WARN("skipped: /usr/bin/python3 with PyJWT (python3-jwt) is not installed");
    return;
  }
  TempDir dir;
  const std::string make = R"PY(
import json, sys, jwt
from cryptography.hazmat.primitives.asymmetric import rsa, ec
from jwt.algorithms import RSAAlgorithm, ECAlgorithm
def jwk(alg, key):
    j = alg.to_jwk(key)
    return json.loads(j) if isinstance(j, str) else j
iss = sys.argv[1]
rk = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ek = ec.generate_private_key(ec.SECP256R1())
rj = jwk(RSAAlgorithm, rk.public_key()); rj.update(kid="py-rsa", alg="RS256", use="sig")
ej = jwk(ECAlgorithm, ek.public_key()); ej.update(kid="py-ec")
claims = {"iss": iss, "aud": ["other", "client-a"], "exp": 1700003600, "nbf": 1699990000, "scope": "read"}
print(json.dumps({
  "jwks": {"keys": [rj, ej]},
  "rs": jwt.encode(claims, rk, algorithm="RS256", headers={"kid": "py-rsa"}),
  "es": jwt.encode(claims, ek, algorithm="ES256", headers={"kid": "py-ec"}),
}))
)PY";
  auto script = dir.write("make.py", make);
  auto out = run(std::string(python) + " " + script.string() + " '" + issuer + "'");
  REQUIRE(out);
  json made = json::parse(*out);
  JwtVerifier v(config(made["jwks"]));
  auto rs = v.verify(made["rs"].get<std::string>(), {"read"}, now);
  CHECK(rs.error == "");
  CHECK(rs.ok);
  auto es = v.verify(made["es"].get<std::string>(), {"read"}, now);
  CHECK(es.error == "");
  CHECK(es.ok);
  std::string tampered = made["es"].get<std::string>();
  tampered[tampered.find('.') + 5] ^= 1;
  CHECK_FALSE(v.verify(tampered, {}, now).ok);

  // The other way round: what this file signs, PyJWT accepts.
  const std::string check_py = R"PY(
import json, sys, jwt
d = json.load(open(sys.argv[1]))
for tok, key in d["pairs"]:
    jwt.decode(tok, key=jwt.PyJWK(key).key, algorithms=["RS256", "ES256"], audience="client-a",
               issuer=d["iss"], options={"verify_exp": False})
print("ok")
)PY";
  auto& k = keys();
  json pairs = json::array({json::array({rs256(), rsa_jwk(k.rsa.get(), "k1")}),
                            json::array({sign(k.ec.get(), "ES256", claims(), "e1"), ec_jwk(k.ec.get(), "e1")})});
  auto data = dir.write("pairs.json", json{{"pairs", pairs}, {"iss", issuer}}.dump());
  auto checker = dir.write("check.py", check_py);
  auto verdict = run(std::string(python) + " " + checker.string() + " " + data.string());
  REQUIRE(verdict);
  CHECK(*verdict == "ok\n");
}

TEST_CASE("JWT: signatures made by the openssl command line verify here", "[jwt]") {
  if (!have_openssl_cli()) {
    WARN("skipped: no openssl command");
    return;
  }
  TempDir dir;
  auto& k = keys();
  for (const char* alg : {"RS256", "ES256"}) {
    INFO(alg);
    bool ec = std::string(alg) == "ES256";
    json header{{"alg", alg}, {"typ", "JWT"}, {"kid", ec ? "e1" : "k1"}};
    std::string input = b64url(header.dump()) + "." + b64url(claims().dump());
    auto key = dir.write(std::string(alg) + ".pem", private_pem(ec ? k.ec.get() : k.rsa.get()));
    auto data = dir.write(std::string(alg) + ".txt", input);
    auto sig_path = dir.path / (std::string(alg) + ".sig");
    REQUIRE(run("openssl dgst -sha256 -sign " + key.string() + " -out " + sig_path.string() + " " + data.string()));
    std::string sig = read_file(sig_path);
    if (ec) sig = der_to_jose(sig);
    auto r = check(input + "." + b64url(sig));
    CHECK(r.error == "");
    CHECK(r.ok);
  }
}

TEST_CASE("JWT: verification is cheap enough to run per request", "[jwt]") {
  // Not a benchmark: a guard against re-parsing keys per call.
  const std::string t = rs256();
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 200; ++i) REQUIRE(verifier().verify(t, {}, now).ok);
  auto per_call = (std::chrono::steady_clock::now() - start) / 200;
  CHECK(per_call < std::chrono::milliseconds(5));
}
