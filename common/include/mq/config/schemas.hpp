#pragma once

#include <stdexcept>
#include <string>

namespace mq {

/// The text of schemas/<name> (e.g. "worker.schema.json"), compiled in at build time.
/// Throws std::out_of_range for an unknown name.
const std::string& embedded_schema(const std::string& name);

}  // namespace mq
