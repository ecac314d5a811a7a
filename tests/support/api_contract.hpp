#pragma once

// schemas/openapi.json as a contract the API tests hold the server to: every answer an API
// test receives (ApiProcess::call) is checked against the documented response for its
// route and status, so a new field, a new status or a new error code cannot drift from the
// document (docs/api.md, "The document is a contract").

#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "api_process.hpp"

namespace valijson {
class Schema;
}

namespace mqtest {

class ApiContract {
  public:
    /// An OpenAPI 3.0 document (tests feed drifted copies of the real one).
    explicit ApiContract(nlohmann::json document);
    ~ApiContract();
    ApiContract(const ApiContract&) = delete;
    ApiContract& operator=(const ApiContract&) = delete;

    /// schemas/openapi.json of the source tree, loaded once.
    static const ApiContract& documented();

    /// What is wrong with `response` as the answer to `method target` ("" when it conforms):
    /// an undocumented path, method, status or media type, a missing required header, a
    /// body that breaks the documented schema (with the validator's words), a 405 whose
    /// Allow does not list the path's methods, or an error code answered with another HTTP
    /// status than common's error-code table gives it.
    std::string violation(const std::string& method, const std::string& target,
                          const HttpResult& response) const;

  private:
    /// The compiled JSON Schema at `pointer` of the document (cached).
    const valijson::Schema& schema_at(const std::string& pointer) const;
    std::string check_response(const std::string& where, const std::string& response_pointer,
                               const HttpResult& response) const;

    nlohmann::json document_;
    nlohmann::json json_schema_components_;  ///< components, nullable turned into type lists
    mutable std::mutex mutex_;
    mutable std::map<std::string, std::unique_ptr<valijson::Schema>> schemas_;
};

/// ApiContract::documented().violation(...) as a Catch2 check: fails the running test with
/// the request, status, body and the reason, and lets it go on.
void check_contract(const std::string& method, const std::string& target,
                    const HttpResult& response);

}  // namespace mqtest
