// JWT authorizers (reference §4.8; API Gateway developer guide
// http-api-jwt-authorizer and http-api-troubleshooting-jwt): the token from the
// identity source, "Bearer " allowed in front; its signature checked against a
// key of the configured JWKS (no network: the set comes from a file or inline);
// then iss, aud (client_id only when aud is absent), exp, nbf, iat and the route's
// scopes (at least one of them, from scope or scp).
//
// OpenSSL 3 only, without the deprecated RSA_* / EC_KEY_* APIs: public keys are
// built from parameters with EVP_PKEY_fromdata, once, and shared by every
// verification (an EVP_PKEY is safe to use from many threads for verifying).
#include "sluice/gateway/authorizers.hpp"

#include "sluice/common/util.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace sluice::gateway {

using json = nlohmann::json;

namespace jwt_detail {

// AWS documents "Currently, only RSA-based algorithms are supported" for HTTP
// API JWT authorizers. ES256 is accepted here on purpose (sluice's brief asks
// for it); flip this to refuse EC-signed tokens exactly as AWS does.
constexpr bool accept_es256 = true;
// AWS says the token "must have a header claim [kid] that matches the key";
// a token without one is refused, as there.
constexpr bool require_kid = true;

enum class Family { rsa, ec };

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdFree {
  void operator()(EVP_MD* p) const { EVP_MD_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

struct Jwk {
  std::string kid;
  Family family = Family::rsa;
  std::string alg;  // from the JWK; empty: any algorithm of its family
  Pkey pkey;
};

// base64url (RFC 4648 §5) without padding, as JWS uses; trailing '=' tolerated.
const unsigned char* bytes(const std::string& s) { return reinterpret_cast<const unsigned char*>(s.data()); }

// Builds a public key from OSSL_PARAMs; nullptr when OpenSSL refuses it.
template <typename Fill>
Pkey key_from_params(const char* type, Fill fill) {
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  if (!bld) return nullptr;
  std::vector<BIGNUM*> bns;
  OSSL_PARAM* params = nullptr;
  EVP_PKEY_CTX* ctx = nullptr;
  EVP_PKEY* pkey = nullptr;
  if (fill(bld, bns) && (params = OSSL_PARAM_BLD_to_param(bld)) &&
      (ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr)) && EVP_PKEY_fromdata_init(ctx) == 1 &&
      EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1) {
    EVP_PKEY_CTX_free(ctx);
    ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr);
    if (!ctx || EVP_PKEY_public_check(ctx) != 1) {
      EVP_PKEY_free(pkey);
      pkey = nullptr;
    }
  }
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  for (BIGNUM* bn : bns) BN_free(bn);
  ERR_clear_error();
  return Pkey(pkey);
}

Pkey rsa_key(const std::string& n, const std::string& e) {
  return key_from_params("RSA", [&](OSSL_PARAM_BLD* bld, std::vector<BIGNUM*>& bns) {
    BIGNUM* bn_n = BN_bin2bn(bytes(n), static_cast<int>(n.size()), nullptr);
    BIGNUM* bn_e = BN_bin2bn(bytes(e), static_cast<int>(e.size()), nullptr);
    if (bn_n) bns.push_back(bn_n);
    if (bn_e) bns.push_back(bn_e);
    return bn_n && bn_e && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) == 1 &&
           OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) == 1;
  });
}

Pkey p256_key(const std::string& x, const std::string& y) {
  // Uncompressed point: 0x04 || X || Y, each coordinate left-padded to 32 bytes.
  std::string point(1, '\x04');
  point.append(32 - x.size(), '\0').append(x).append(32 - y.size(), '\0').append(y);
  return key_from_params("EC", [&](OSSL_PARAM_BLD* bld, std::vector<BIGNUM*>&) {
    return OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
           OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) == 1;
  });
}

// JOSE carries an ECDSA signature as R || S (32 bytes each for P-256);
// OpenSSL verifies the DER ECDSA-Sig-Value.
std::optional<std::string> jose_to_der(const std::string& raw) {
  if (raw.size() != 64) return std::nullopt;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  if (!sig) return std::nullopt;
  BIGNUM* r = BN_bin2bn(bytes(raw), 32, nullptr);
  BIGNUM* s = BN_bin2bn(bytes(raw) + 32, 32, nullptr);
  std::optional<std::string> out;
  if (r && s && ECDSA_SIG_set0(sig, r, s) == 1) {
    r = s = nullptr;  // owned by sig now
    int len = i2d_ECDSA_SIG(sig, nullptr);
    if (len > 0) {
      std::string der(static_cast<std::size_t>(len), '\0');
      auto* p = reinterpret_cast<unsigned char*>(der.data());
      if (i2d_ECDSA_SIG(sig, &p) == len) out = std::move(der);
    }
  }
  BN_free(r);
  BN_free(s);
  ECDSA_SIG_free(sig);
  return out;
}

bool verify_signature(EVP_PKEY* pkey, const EVP_MD* md, std::string_view signed_part, const std::string& sig) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (!ctx) return false;
  bool ok = EVP_DigestVerifyInit(ctx, nullptr, md, nullptr, pkey) == 1 &&
            EVP_DigestVerify(ctx, bytes(sig), sig.size(), reinterpret_cast<const unsigned char*>(signed_part.data()),
                             signed_part.size()) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) ERR_clear_error();
  return ok;
}

// A value safe to quote in a header and a log line.
std::string printable(std::string_view s, std::size_t max = 64) {
  std::string out;
  for (char c : s.substr(0, max)) {
    auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u >= 0x7f || c == '"' || c == '\\' ? '?' : c);
  }
  return out;
}

std::string load_jwks_text(const stack::JwtConfig& config, std::string& where) {
  if (config.jwks_file) {
    where = "JWKS file " + config.jwks_file->string();
    std::ifstream in(*config.jwks_file, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read the " + where);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  where = "inline JWKS";
  if (config.jwks_inline.empty())
    throw std::runtime_error("a JWT authorizer needs signing keys: a JWKS file (jwks_file) or an inline JWKS (jwks)");
  return config.jwks_inline;
}

std::string jwk_string(const json& k, const char* name) {
  auto it = k.find(name);
  return it != k.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace jwt_detail

struct JwtVerifier::Keys {
  std::vector<jwt_detail::Jwk> keys;
  std::unique_ptr<EVP_MD, jwt_detail::MdFree> sha256, sha384, sha512;
};

JwtVerifier::JwtVerifier(const stack::JwtConfig& config) : keys_(std::make_unique<Keys>()), config_(config) {
  using namespace jwt_detail;
  std::string where;
  json doc = json::parse(load_jwks_text(config, where), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) throw std::runtime_error("the " + where + " is not a JSON object");
  auto list = doc.find("keys");
  if (list == doc.end() || !list->is_array())
    throw std::runtime_error("the " + where + " has no \"keys\" list (a JWKS is {\"keys\": [...]})");

  for (std::size_t i = 0; i < list->size(); ++i) {
    const json& k = (*list)[i];
    if (!k.is_object()) throw std::runtime_error("key " + std::to_string(i) + " of the " + where + " is not an object");
    Jwk jwk;
    jwk.kid = jwk_string(k, "kid");
    jwk.alg = jwk_string(k, "alg");
    std::string name = "key " + std::to_string(i) + (jwk.kid.empty() ? "" : " (kid " + jwk.kid + ")") + " of the " + where;
    std::string kty = jwk_string(k, "kty");
    std::string use = jwk_string(k, "use");
    // Encryption keys and key types API Gateway cannot use are left out, as a
    // provider's JWKS may well contain them.
    if (!use.empty() && use != "sig") continue;
    if (kty == "RSA") {
      if (!jwk.alg.empty() && jwk.alg != "RS256" && jwk.alg != "RS384" && jwk.alg != "RS512") continue;
      auto n = base64url_decode(jwk_string(k, "n"));
      auto e = base64url_decode(jwk_string(k, "e"));
      if (!n || !e || n->empty() || e->empty())
        throw std::runtime_error(name + ": an RSA key needs base64url \"n\" and \"e\"");
      jwk.family = Family::rsa;
      jwk.pkey = rsa_key(*n, *e);
      if (!jwk.pkey) throw std::runtime_error(name + ": OpenSSL rejected the RSA public key");
    } else if (kty == "EC") {
      if (jwk_string(k, "crv") != "P-256") continue;
      if (!jwk.alg.empty() && jwk.alg != "ES256") continue;
      auto x = base64url_decode(jwk_string(k, "x"));
      auto y = base64url_decode(jwk_string(k, "y"));
      if (!x || !y || x->empty() || y->empty() || x->size() > 32 || y->size() > 32)
        throw std::runtime_error(name + ": a P-256 key needs base64url \"x\" and \"y\" of 32 bytes");
      jwk.family = Family::ec;
      jwk.pkey = p256_key(*x, *y);
      if (!jwk.pkey) throw std::runtime_error(name + ": the point is not a valid P-256 public key");
    } else {
      continue;
    }
    keys_->keys.push_back(std::move(jwk));
  }
  if (keys_->keys.empty())
    throw std::runtime_error("the " + where + " has no RSA or EC P-256 signing key");

  keys_->sha256.reset(EVP_MD_fetch(nullptr, "SHA256", nullptr));
  keys_->sha384.reset(EVP_MD_fetch(nullptr, "SHA384", nullptr));
  keys_->sha512.reset(EVP_MD_fetch(nullptr, "SHA512", nullptr));
  if (!keys_->sha256 || !keys_->sha384 || !keys_->sha512)
    throw std::runtime_error("OpenSSL has no SHA-2 digests available");
}

JwtVerifier::~JwtVerifier() = default;

namespace {

JwtVerifier::Result refuse(std::string error) {
  JwtVerifier::Result r;
  r.error = std::move(error);
  return r;
}

double seconds_since_epoch(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

// Scopes from "scope" (space-separated, OAuth 2.0 §3.3) and "scp" (a list, or
// a space-separated string as some providers write it).
std::vector<std::string> token_scopes(const json& claims) {
  std::vector<std::string> out;
  auto add = [&](const std::string& s) {
    if (!s.empty() && std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
  };
  for (const char* name : {"scope", "scp"}) {
    auto it = claims.find(name);
    if (it == claims.end()) continue;
    if (it->is_string()) {
      for (const auto& s : split(it->get<std::string>(), ' ')) add(s);
    } else if (it->is_array()) {
      for (const auto& s : *it)
        if (s.is_string()) add(s.get<std::string>());
    }
  }
  return out;
}

bool audience_ok(const json& claims, const std::vector<std::string>& accepted) {
  if (accepted.empty()) return true;
  auto is_accepted = [&](const json& v) {
    return v.is_string() && std::find(accepted.begin(), accepted.end(), v.get<std::string>()) != accepted.end();
  };
  // client_id is consulted only when aud is absent.
  if (auto aud = claims.find("aud"); aud != claims.end()) {
    if (aud->is_array()) return std::any_of(aud->begin(), aud->end(), is_accepted);
    return is_accepted(*aud);
  }
  auto client = claims.find("client_id");
  return client != claims.end() && is_accepted(*client);
}

}  // namespace

JwtVerifier::Result JwtVerifier::verify(const std::string& token_in, const std::vector<std::string>& required_scopes,
                                        std::chrono::system_clock::time_point now) const {
  using namespace jwt_detail;
  std::string_view token = trim(token_in);
  if (token.size() >= 7 && iequals(token.substr(0, 7), "Bearer ")) token = trim(token.substr(7));

  // 1. Three base64url parts: header.payload.signature.
  auto d1 = token.find('.');
  auto d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d1 == std::string_view::npos || d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
    return refuse("token contains an invalid number of segments");
  std::string_view header_b64 = token.substr(0, d1);
  std::string_view payload_b64 = token.substr(d1 + 1, d2 - d1 - 1);
  std::string_view sig_b64 = token.substr(d2 + 1);

  auto header_text = base64url_decode(header_b64);
  if (!header_text) return refuse("the token header is not valid base64url");
  json header = json::parse(*header_text, nullptr, false);
  if (header.is_discarded() || !header.is_object()) return refuse("the token header is not a JSON object");
  auto payload_text = base64url_decode(payload_b64);
  if (!payload_text) return refuse("the token payload is not valid base64url");
  json claims = json::parse(*payload_text, nullptr, false);
  if (claims.is_discarded() || !claims.is_object()) return refuse("the token payload is not a JSON object");
  auto sig = base64url_decode(sig_b64);
  if (!sig) return refuse("the token signature is not valid base64url");

  // 2. The algorithm: RSA PKCS#1 v1.5 with SHA-2, or ECDSA P-256 / SHA-256.
  // "none" and the HMAC family are refused: the keys are public.
  std::string alg = header.contains("alg") && header["alg"].is_string() ? header["alg"].get<std::string>() : "";
  const EVP_MD* md = nullptr;
  Family family = Family::rsa;
  if (alg == "RS256") md = keys_->sha256.get();
  else if (alg == "RS384") md = keys_->sha384.get();
  else if (alg == "RS512") md = keys_->sha512.get();
  else if (alg == "ES256" && accept_es256) {
    md = keys_->sha256.get();
    family = Family::ec;
  }
  if (!md) return refuse("signing method " + (alg.empty() ? std::string("none") : printable(alg, 16)) + " is invalid");
  if (header.contains("crit")) return refuse("the token has critical header parameters that are not supported");

  // 3. The key: the one named by kid, or each that could have signed it.
  const json* kid = header.contains("kid") ? &header["kid"] : nullptr;
  if (kid && !kid->is_string()) return refuse("the token's kid header is not a string");
  if (!kid && require_kid) return refuse("the token has no kid header");
  std::vector<const Jwk*> candidates;
  bool kid_found = false;
  for (const auto& k : keys_->keys) {
    if (kid && k.kid != kid->get_ref<const std::string&>()) continue;
    kid_found = true;
    if (k.family == family && (k.alg.empty() || k.alg == alg)) candidates.push_back(&k);
  }
  if (kid && !kid_found) return refuse("the token's kid does not match any key of the authorizer's JWKS");
  if (candidates.empty()) return refuse("signing method " + alg + " does not match the type or alg of the token's key");

  std::string signed_part(token.substr(0, d2));
  std::string der;
  const std::string* signature = &*sig;
  if (family == Family::ec) {
    auto converted = jose_to_der(*sig);
    if (!converted) return refuse("the token signature is invalid");
    der = std::move(*converted);
    signature = &der;
  }
  bool verified = std::any_of(candidates.begin(), candidates.end(), [&](const Jwk* k) {
    return verify_signature(k->pkey.get(), md, signed_part, *signature);
  });
  if (!verified) return refuse("the token signature is invalid");

  // 4. Claims.
  auto iss = claims.find("iss");
  if (iss == claims.end() || !iss->is_string() || iss->get_ref<const std::string&>() != config_.issuer)
    return refuse("the token does not have a valid issuer");
  if (!audience_ok(claims, config_.audience)) return refuse("the token does not have a valid audience");
  const double now_s = seconds_since_epoch(now);
  if (auto exp = claims.find("exp"); exp != claims.end()) {
    if (!exp->is_number()) return refuse("the token's exp claim is not a number");
    if (!(now_s < exp->get<double>())) return refuse("the token has expired");
  }
  if (auto nbf = claims.find("nbf"); nbf != claims.end()) {
    if (!nbf->is_number()) return refuse("the token's nbf claim is not a number");
    if (now_s < nbf->get<double>()) return refuse("the token is not valid yet");
  }
  // "iat - Must be before the current time in UTC" (AWS's list of the claims it checks).
  if (auto iat = claims.find("iat"); iat != claims.end()) {
    if (!iat->is_number()) return refuse("the token's iat claim is not a number");
    if (now_s < iat->get<double>()) return refuse("the token was issued in the future");
  }

  Result r;
  r.algorithm = alg;
  r.scopes = token_scopes(claims);
  r.claims = std::move(claims);
  // 5. At least one of the route's scopes, when it names any.
  if (!required_scopes.empty() &&
      std::none_of(required_scopes.begin(), required_scopes.end(), [&](const std::string& s) {
        return std::find(r.scopes.begin(), r.scopes.end(), s) != r.scopes.end();
      })) {
    r.insufficient_scope = true;
    r.error = "the token does not have any of the route's scopes (expected one of: " + join(required_scopes, " ") + ")";
    return r;
  }
  r.ok = true;
  return r;
}

namespace {

// How API Gateway writes a claim into requestContext.authorizer.jwt.claims: always a string,
// printed as Go's fmt prints the decoded value: lists as "[a b]" (aws/aws-lambda-go#591),
// objects as "map[k:v]" with their keys sorted (aws/aws-lambda-go#570), null as "<nil>",
// at any depth.
std::string claim_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_null()) return "<nil>";
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15) return std::to_string(static_cast<long long>(d));
    return v.dump();
  }
  if (v.is_array() || v.is_object()) {
    std::string out = v.is_array() ? "[" : "map[";
    bool first = true;
    for (const auto& [k, x] : v.items()) {  // nlohmann's objects iterate in key order
      if (!first) out += ' ';
      first = false;
      if (v.is_object()) out += k + ":";
      out += claim_text(x);
    }
    return out + "]";
  }
  return v.dump();
}

}  // namespace

nlohmann::json jwt_authorizer_context(const JwtVerifier::Result& result, bool route_has_scopes) {
  json claims = json::object();
  if (result.claims.is_object())
    for (const auto& [k, v] : result.claims.items())
      if (!v.is_null()) claims[k] = claim_text(v);
  // scopes is null unless the route names authorization scopes, whatever scope claim the token
  // carries (real events: awsdocs/amazon-api-gateway-developer-guide#113, floci-io/floci#2010);
  // with route scopes, the token's.
  json scopes = route_has_scopes ? json(result.scopes) : json(nullptr);
  return json{{"jwt", {{"claims", std::move(claims)}, {"scopes", std::move(scopes)}}}};
}

std::string jwt_www_authenticate(const JwtVerifier::Result& result, const std::vector<std::string>& required_scopes) {
  std::string scope;
  for (const auto& s : required_scopes) {
    if (!scope.empty()) scope += ' ';
    scope += jwt_detail::printable(s, 256);
  }
  return "Bearer scope=\"" + scope + "\" error=\"" + (result.insufficient_scope ? "insufficient_scope" : "invalid_token") +
         "\" error_description=\"" + jwt_detail::printable(result.error, 512) + "\"";
}

}  // namespace sluice::gateway
