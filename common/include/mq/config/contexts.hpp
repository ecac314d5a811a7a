#pragma once

// mqctl's contexts file (~/.config/mq/config.yaml, like kubectl's kubeconfig): named
// environments, each with the URLs, tenant and key prefix to act on, and which one is
// current. docs/mqctl.md describes the file.
//
//   current-context: staging
//   contexts:
//     staging:
//       redis_url: redis://10.0.0.5:6379/0
//       database_url: postgresql://mq@10.0.0.6/mq
//       tenant: acme
//       key_prefix: "mq:"
//       api_url: https://mq.staging.example/   # optional
//       token: mq_...                           # optional, masked by `mqctl config view`
//
// A context is one source layer of settings: context_settings() yields them by their
// environment names (REDIS_URL, DATABASE_URL, MQ_TENANT, REDIS_KEY_PREFIX), so it sits
// between the defaults/YAML file and the environment (flag > environment > context >
// config file > defaults).

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mq {

/// One named environment.
struct ClientContext {
    std::string redis_url;
    std::string database_url;
    std::string tenant;
    std::string key_prefix;
    std::string api_url;
    std::string token;  ///< a secret: masked when shown
};

/// The whole file: contexts by name and the current one (empty: none).
struct ClientContextFile {
    std::string current;
    std::map<std::string, ClientContext> contexts;
};

/// The fields of a context in file order, as (key, ClientContext member) pairs.
const std::vector<std::pair<const char*, std::string ClientContext::*>>& client_context_fields();

/// Where the file is: `flag` when given, else $MQCONFIG, else $XDG_CONFIG_HOME/mq/config.yaml,
/// else $HOME/.config/mq/config.yaml. `env` holds MQCONFIG, XDG_CONFIG_HOME and HOME when
/// set (an empty XDG_CONFIG_HOME counts as unset, as the XDG spec says).
std::string client_contexts_path(const std::string& flag,
                                 const std::map<std::string, std::string>& env);

/// Reads the file; a missing file is an empty one. Throws ValidationError with file:line on
/// a syntax error, an unknown key (naming the closest known one) or a bad context name.
ClientContextFile load_client_contexts(const std::string& path);

/// Writes the file atomically (a temporary file renamed over it), mode 0600 since it may
/// hold tokens and passwords; creates the directory (0700) when missing.
void save_client_contexts(const std::string& path, const ClientContextFile& file);

/// The context to use: `name` when given (Error kNotFound if the file lacks it), else the
/// current one (kNotFound if current-context names a context that is gone), else none.
std::optional<std::pair<std::string, ClientContext>> select_client_context(
    const ClientContextFile& file, const std::string& name, const std::string& path);

/// The context's settings by environment name, only those it sets: REDIS_URL,
/// DATABASE_URL, MQ_TENANT, REDIS_KEY_PREFIX. A source layer for the configuration.
std::map<std::string, std::string> context_settings(const ClientContext& context);

/// "redis://user:****@host:6379/0": a URL with its password replaced, for showing.
std::string mask_url_password(const std::string& url);

}  // namespace mq
