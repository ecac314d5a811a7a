# Generates a C++ file holding every schemas/*.schema.json and schemas/openapi.json, so the binaries validate
# configuration without the source tree. Run at build time by common/CMakeLists.txt.
file(GLOB files "${SCHEMAS_DIR}/*.schema.json" "${SCHEMAS_DIR}/openapi.json")
list(SORT files)
set(body "")
foreach(f IN LISTS files)
  get_filename_component(name "${f}" NAME)
  file(READ "${f}" text)
  string(APPEND body "        {\"${name}\", R\"mq_json(${text})mq_json\"},\n")
endforeach()
file(WRITE "${OUTPUT}.tmp" "// Generated from schemas/*.schema.json by cmake/embed_schemas.cmake. Do not edit.
#include \"mq/config/schemas.hpp\"

#include <map>

namespace mq {

const std::string& embedded_schema(const std::string& name) {
    static const std::map<std::string, std::string> kSchemas{
${body}    };
    auto it = kSchemas.find(name);
    if (it == kSchemas.end()) throw std::out_of_range(\"no embedded schema \" + name);
    return it->second;
}

}  // namespace mq
")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
