// HTTP API CORS as API Gateway answers it (reference §4.9): preflight OPTIONS
// answered by the gateway even without a route, configured headers added to
// every response, CORS headers from the backend dropped.
#pragma once

#include "sluice/gateway/types.hpp"
#include "sluice/stack/model.hpp"

namespace sluice::gateway {

// OPTIONS with Origin and Access-Control-Request-Method.
bool is_preflight(const Request& req);
// 204 with the allowed origin/methods/headers/max-age/credentials for this request
// (no CORS headers at all when the origin or method is not allowed).
Response preflight_response(const stack::CorsSpec& cors, const Request& req);
// Drops Access-Control-* headers the function returned and adds the configured
// ones that apply to this request's Origin.
void apply_cors(const stack::CorsSpec& cors, const Request& req, Response& res);

}  // namespace sluice::gateway
