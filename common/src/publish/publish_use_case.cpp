#include "mq/publish/publish_use_case.hpp"

#include <nlohmann/json.hpp>

#include "mq/auth/quota.hpp"
#include "mq/publish/sealing.hpp"

namespace mq {

PublishUseCase::PublishUseCase(PublishLimits limits, std::shared_ptr<const Keyring> keyring,
                               std::shared_ptr<PayloadSchemaCache> schemas, PublishQuota* quota)
    : limits_(limits),
      keyring_(keyring ? std::move(keyring) : std::make_shared<const Keyring>()),
      schemas_(schemas ? std::move(schemas) : std::make_shared<PayloadSchemaCache>()),
      quota_(quota) {}

void PublishUseCase::take_quota(const Queue& queue, std::size_t n) const {
    if (!quota_ || n == 0) return;
    if (auto wait = quota_->take(queue.tenant, n))
        throw Error(ErrorCode::kQuotaExceeded,
                    "publish quota of tenant '" + queue.tenant + "' exceeded",
                    {{"rate_per_s", quota_->rate(queue.tenant).value_or(0)}}, *wait);
}

void PublishUseCase::check(const Queue& queue, const PublishRequest& request) const {
    validate(request, limits_);
    if (auto schema = schemas_->get(queue)) schema->check(request.payload);
}

void PublishUseCase::seal(const Queue& queue, PublishRequest& request) const {
    seal_request(request, *keyring_, queue);
}

void PublishUseCase::admit(const Queue& queue, PublishRequest& request) const {
    check(queue, request);
    seal(queue, request);
}

AdmittedBatch PublishUseCase::admit_all(const Queue& queue, std::vector<PublishRequest> requests,
                                        std::vector<std::optional<Error>> refused, bool partial,
                                        bool charge_quota) const {
    refused.resize(requests.size());
    std::size_t asked = 0;
    for (const auto& r : refused)
        if (!r) ++asked;
    if (charge_quota) take_quota(queue, asked);
    // One schema lookup for the whole call: the hot path pays it once per request body.
    auto schema = schemas_->get(queue);
    AdmittedBatch out;
    out.accepted.reserve(asked);
    out.index.reserve(asked);
    for (std::size_t i = 0; i < requests.size(); ++i) {
        if (refused[i]) continue;  // its fields were already refused by the parser
        try {
            validate(requests[i], limits_);
            if (schema) schema->check(requests[i].payload);
            seal_request(requests[i], *keyring_, queue);
        } catch (const Error& e) {
            if (!partial) throw;
            refused[i] = e;
            continue;
        }
        out.index.push_back(i);
        out.accepted.push_back(std::move(requests[i]));
    }
    out.refused = std::move(refused);
    return out;
}

void PublishUseCase::attach(const Queue& queue, BatchOptions& options) const {
    // Both run per line; the queue must outlive the batch (it does: publish_json_lines takes it).
    options.check = [this, &queue](const PublishRequest& r) {
        // A line may carry the seeds' "tenantId": it must name the queue's tenant.
        if (r.claimed_tenant && *r.claimed_tenant != queue.tenant)
            throw ValidationError("tenantId is not the tenant of queue '" + queue.name + "'",
                                  {{"field", "tenantId"}});
        check(queue, r);
    };
    options.seal = [this, &queue](PublishRequest& r) { seal(queue, r); };
}

PublishRequest PublishUseCase::republish_request(const Queue& from, const Message& message,
                                                 const Queue& target) const {
    PublishRequest r;
    // A sealed payload is bound to its queue (the aad names it): open it for `from`, and let
    // seal() close it again for `target`, with the keyring's current key.
    r.payload = open_payload(message, *keyring_, from);
    r.key = message.key;
    r.content_type = message.content_type;
    r.trace_id = message.trace_id;
    r.trace_parent_id = message.trace_parent_id;
    r.trace_flags = message.trace_flags;
    r.trace_state = message.trace_state;
    if (!message.headers_json.empty()) {
        auto h = nlohmann::json::parse(message.headers_json, nullptr, false);
        if (h.is_object())
            for (const auto& [k, v] : h.items())
                if (v.is_string()) r.headers[k] = v.get<std::string>();
    }
    r.headers["mq-replayed-from"] = message.id;
    admit(target, r);
    return r;
}

std::shared_ptr<const Keyring> keyring_for(const std::string& path,
                                           const std::vector<const Queue*>& queues) {
    bool needed = false;
    for (const auto* q : queues)
        if (q && q->encryption != "none") needed = true;
    if (!needed || path.empty()) return std::make_shared<const Keyring>();
    return std::make_shared<const Keyring>(Keyring::load(path));
}

}  // namespace mq
