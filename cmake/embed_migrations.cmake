# Generates a C++ file holding every schemas/migrations/*.sql, so mqctl can migrate a
# database without the source tree. Run at build time by common/CMakeLists.txt.
file(GLOB files "${MIGRATIONS_DIR}/*.sql")
list(SORT files)
set(body "")
foreach(f IN LISTS files)
  get_filename_component(name "${f}" NAME)
  string(REGEX MATCH "^[0-9]+" version "${name}")
  if(version STREQUAL "")
    message(FATAL_ERROR "migration ${name} must start with its number")
  endif()
  math(EXPR version "${version}")
  file(READ "${f}" sql)
  string(APPEND body "        {${version}, \"${name}\", R\"mq_sql(${sql})mq_sql\"},\n")
endforeach()
file(WRITE "${OUTPUT}.tmp" "// Generated from schemas/migrations by cmake/embed_migrations.cmake. Do not edit.
#include \"mq/pg/migrations.hpp\"

namespace mq::pg {

const std::vector<Migration>& embedded_migrations() {
    static const std::vector<Migration> kMigrations{
${body}    };
    return kMigrations;
}

}  // namespace mq::pg
")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
