#pragma once

#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <unordered_set>

#include "mq/error.hpp"

namespace mq::pg {

/// A named SQL statement, prepared once per connection on first use.
struct Statement {
    const char* name;
    const char* sql;
};

/// "host:port" of a libpq URL or key=value string, for messages. Never the password.
std::string describe_url(std::string_view url);

/// What mq connects with: `url` (a postgresql:// URL or a key=value string) checked by
/// libpq's own parser, as key=value, with bounded waits where the URL sets none:
/// connect_timeout 10 s and TCP keepalives (idle 30 s, every 10 s, 3 probes), so a host
/// that drops packets fails a command in seconds rather than after the kernel's minutes.
/// ValidationError (field DATABASE_URL) when libpq cannot parse it; the message never
/// holds the text itself, which may carry a password.
std::string connection_string(const std::string& url);

/// `text` (a libpq error) with the password of `url` and `url` itself replaced by ***.
std::string scrub(std::string text, std::string_view url);

/// One PostgreSQL connection (libpqxx: one per thread). A broken connection reconnects
/// on the next transaction.
class Database {
  public:
    explicit Database(std::string url);

    /// Runs `work(tx)` in a transaction and commits. Retries a broken connection (once
    /// reconnected) and serialization failures, up to 3 attempts; never retries a commit
    /// whose outcome is unknown (pqxx::in_doubt_error). Maps failures to mq::Error.
    template <class Work>
    auto transact(Work&& work) {
        for (int attempt = 1;; ++attempt) {
            try {
                ensure_connected();
                pqxx::work tx(*conn_);
                if constexpr (std::is_void_v<decltype(work(tx))>) {
                    work(tx);
                    tx.commit();
                    return;
                } else {
                    auto result = work(tx);
                    tx.commit();
                    return result;
                }
            } catch (const pqxx::in_doubt_error&) {
                throw Error(ErrorCode::kBackendUnavailable,
                            "lost connection to PostgreSQL at " + describe_url(url_) +
                                " while committing; the change may or may not have been saved");
            } catch (const pqxx::broken_connection& e) {
                conn_.reset();
                if (attempt >= 3) rethrow(e);
            } catch (const pqxx::serialization_failure& e) {
                if (attempt >= 3) rethrow(e);
            } catch (const pqxx::deadlock_detected& e) {
                if (attempt >= 3) rethrow(e);
            } catch (const mq::Error&) {
                throw;
            } catch (const std::exception& e) {
                rethrow(e);
            }
        }
    }

    /// Runs a prepared statement, preparing it on this connection first if needed.
    template <class... Args>
    pqxx::result exec(pqxx::transaction_base& tx, const Statement& st, Args&&... args) {
        prepare(st);
        return tx.exec_prepared(st.name, std::forward<Args>(args)...);
    }

    /// The underlying connection, connecting first. For migrations and LISTEN.
    pqxx::connection& connection();
    const std::string& url() const { return url_; }

    /// Maps a libpqxx/libpq exception to mq::Error: broken connection -> backend
    /// unavailable, unique violation -> conflict, check violation -> validation.
    [[noreturn]] void rethrow(const std::exception& e) const;

  private:
    void ensure_connected();
    void prepare(const Statement& st);

    std::string url_;
    std::string conninfo_;  ///< connection_string(url_)
    std::unique_ptr<pqxx::connection> conn_;
    std::unordered_set<std::string> prepared_;
};

}  // namespace mq::pg
