#include "mq/config/contexts.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "mq/config/yaml_json.hpp"
#include "mq/core/input_file.hpp"
#include "mq/core/json.hpp"
#include "mq/core/suggest.hpp"
#include "mq/error.hpp"

namespace mq {

namespace {

constexpr std::size_t kMaxContextsFileBytes = 1024 * 1024;

bool valid_context_name(const std::string& name) {
    if (name.empty() || name.size() > 64) return false;
    for (char c : name)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
              c == '@'))
            return false;
    return true;
}

[[noreturn]] void unknown_key(const YamlDocument& doc, const std::string& pointer,
                              const std::string& key, const std::vector<std::string>& known) {
    std::string text = doc.where(pointer) + ": unknown key '" + printable(key) + "'";
    if (auto near = closest_match(key, known)) text += "; did you mean '" + *near + "'?";
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    throw ValidationError(text + " (known: " + list + ")", {{"field", pointer}});
}

}  // namespace

const std::vector<std::pair<const char*, std::string ClientContext::*>>& client_context_fields() {
    static const std::vector<std::pair<const char*, std::string ClientContext::*>> kFields = {
        {"redis_url", &ClientContext::redis_url}, {"database_url", &ClientContext::database_url},
        {"tenant", &ClientContext::tenant},       {"key_prefix", &ClientContext::key_prefix},
        {"api_url", &ClientContext::api_url},     {"token", &ClientContext::token}};
    return kFields;
}

std::string client_contexts_path(const std::string& flag,
                                 const std::map<std::string, std::string>& env) {
    if (!flag.empty()) return flag;
    auto get = [&env](const char* name) -> std::string {
        auto it = env.find(name);
        return it == env.end() ? std::string() : it->second;
    };
    if (auto p = get("MQCONFIG"); !p.empty()) return p;
    if (auto x = get("XDG_CONFIG_HOME"); !x.empty()) return x + "/mq/config.yaml";
    if (auto h = get("HOME"); !h.empty()) return h + "/.config/mq/config.yaml";
    throw ValidationError(
        "cannot tell where the contexts file is: HOME and XDG_CONFIG_HOME are unset; give "
        "--mqconfig FILE or MQCONFIG");
}

ClientContextFile load_client_contexts(const std::string& path) {
    ClientContextFile out;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return out;
    YamlDocument doc =
        parse_yaml(read_input_file(path, "contexts file", kMaxContextsFileBytes), path);
    if (doc.json.is_null()) return out;
    if (!doc.json.is_object())
        throw ValidationError(doc.where("") +
                                  ": the contexts file must be a mapping with "
                                  "current-context and contexts",
                              {{"field", "/"}});
    static const std::vector<std::string> kTop = {"current-context", "contexts"};
    for (const auto& [key, value] : doc.json.items()) {
        const std::string pointer = "/" + key;
        if (key == "current-context") {
            if (value.is_null()) continue;
            if (!value.is_string())
                throw ValidationError(doc.where(pointer) + ": current-context must be a name",
                                      {{"field", pointer}});
            out.current = value.get<std::string>();
        } else if (key == "contexts") {
            if (value.is_null()) continue;
            if (!value.is_object())
                throw ValidationError(doc.where(pointer) + ": contexts must map names to settings",
                                      {{"field", pointer}});
            for (const auto& [name, settings] : value.items()) {
                const std::string cp = pointer + "/" + name;
                if (!valid_context_name(name))
                    throw ValidationError(doc.where(cp) + ": context name '" + printable(name) +
                                              "' must be 1-64 of A-Z a-z 0-9 . _ - @",
                                          {{"field", cp}});
                ClientContext c;
                if (!settings.is_null() && !settings.is_object())
                    throw ValidationError(
                        doc.where(cp) + ": context '" + name + "' must be a mapping of settings",
                        {{"field", cp}});
                if (settings.is_object())
                    for (const auto& [field, v] : settings.items()) {
                        const std::string fp = cp + "/" + field;
                        std::string ClientContext::*member = nullptr;
                        std::vector<std::string> known;
                        for (const auto& [k, m] : client_context_fields()) {
                            known.emplace_back(k);
                            if (field == k) member = m;
                        }
                        if (!member) unknown_key(doc, fp, field, known);
                        if (v.is_null()) continue;
                        if (!v.is_string())
                            throw ValidationError(doc.where(fp) + ": " + fp + " must be a string",
                                                  {{"field", fp}});
                        c.*member = v.get<std::string>();
                    }
                out.contexts.emplace(name, std::move(c));
            }
        } else {
            unknown_key(doc, "/" + key, key, kTop);
        }
    }
    return out;
}

void save_client_contexts(const std::string& path, const ClientContextFile& file) {
    YAML::Emitter e;
    e << YAML::BeginMap;
    e << YAML::Key << "current-context" << YAML::Value << file.current;
    e << YAML::Key << "contexts" << YAML::Value << YAML::BeginMap;
    for (const auto& [name, c] : file.contexts) {
        e << YAML::Key << name << YAML::Value << YAML::BeginMap;
        for (const auto& [key, member] : client_context_fields())
            if (!(c.*member).empty())
                e << YAML::Key << key << YAML::Value << YAML::DoubleQuoted << c.*member;
        e << YAML::EndMap;
    }
    e << YAML::EndMap << YAML::EndMap;
    const std::string text = std::string(e.c_str()) + "\n";

    const std::filesystem::path target(path);
    std::error_code ec;
    if (target.has_parent_path() && !std::filesystem::exists(target.parent_path(), ec)) {
        std::filesystem::create_directories(target.parent_path(), ec);
        if (ec)
            throw Error(ErrorCode::kInternal,
                        "cannot create " + target.parent_path().string() + ": " + ec.message());
        ::chmod(target.parent_path().c_str(), 0700);
    }
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        throw Error(ErrorCode::kInternal,
                    "cannot write the contexts file " + path + ": " + std::strerror(errno));
    const char* p = text.data();
    std::size_t left = text.size();
    bool ok = true;
    while (left > 0) {
        ssize_t n = ::write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            ok = false;
            break;
        }
        p += n;
        left -= static_cast<std::size_t>(n);
    }
    const int saved = errno;
    ok = ::fsync(fd) == 0 && ok;
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
        const int err = ok ? errno : saved;
        ::unlink(tmp.c_str());
        throw Error(ErrorCode::kInternal,
                    "cannot write the contexts file " + path + ": " + std::strerror(err));
    }
}

std::optional<std::pair<std::string, ClientContext>> select_client_context(
    const ClientContextFile& file, const std::string& name, const std::string& path) {
    const std::string wanted = name.empty() ? file.current : name;
    if (wanted.empty()) return std::nullopt;
    auto it = file.contexts.find(wanted);
    if (it == file.contexts.end()) {
        std::vector<std::string> names;
        for (const auto& [n, c] : file.contexts) names.push_back(n);
        std::string text = "context '" + printable(wanted) + "' not found in " + path;
        if (auto near = closest_match(wanted, names)) text += "; did you mean '" + *near + "'?";
        text += name.empty() ? " (it is the current-context; pick another with: mqctl config "
                               "use-context NAME)"
                             : " (list them with: mqctl config get-contexts)";
        throw Error(ErrorCode::kNotFound, text, {{"context", printable(wanted)}});
    }
    return *it;
}

std::map<std::string, std::string> context_settings(const ClientContext& c) {
    std::map<std::string, std::string> out;
    if (!c.redis_url.empty()) out["REDIS_URL"] = c.redis_url;
    if (!c.database_url.empty()) out["DATABASE_URL"] = c.database_url;
    if (!c.tenant.empty()) out["MQ_TENANT"] = c.tenant;
    if (!c.key_prefix.empty()) out["REDIS_KEY_PREFIX"] = c.key_prefix;
    return out;
}

std::string mask_url_password(const std::string& url) {
    // scheme://user:password@host...: the password is between the first ':' after "//"
    // and the last '@' before the path.
    auto scheme = url.find("://");
    if (scheme == std::string::npos) {
        // libpq's key=value form: "host=db password=secret"
        auto pw = url.find("password=");
        if (pw == std::string::npos) return url;
        auto end = url.find(' ', pw);
        return url.substr(0, pw + 9) + "****" + (end == std::string::npos ? "" : url.substr(end));
    }
    const std::size_t start = scheme + 3;
    auto slash = url.find('/', start);
    auto at = url.rfind('@', slash == std::string::npos ? std::string::npos : slash);
    if (at == std::string::npos || at < start) return url;
    auto colon = url.find(':', start);
    if (colon == std::string::npos || colon > at) return url;
    return url.substr(0, colon + 1) + "****" + url.substr(at);
}

}  // namespace mq
