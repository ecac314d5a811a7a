#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#if defined(__SANITIZE_ADDRESS__)
// LeakSanitizer reads this at exit. libpqxx 6.4 (Debian 12's) leaks the PGresult of a
// BEGIN sent on a connection whose server process was terminated: transaction_base::Begin
// -> direct_exec -> libpq PQmakeEmptyPGresult, never PQclear'ed. The tests that take
// PostgreSQL away (DROP DATABASE ... WITH (FORCE)) hit it; it is libpqxx's, not ours, and
// bounded (one result per broken connection). Only leaks allocated under libpqxx match.
extern "C" const char* __lsan_default_suppressions() { return "leak:libpqxx-6.4.so\n"; }

#include <cstdlib>
// The processes the tests start (mq-api, mq-worker, mqctl) read their UBSan suppressions
// from the environment they inherit: tests/support/ubsan.supp says why.
[[maybe_unused]] static const int kUbsanOptions =
    ::setenv("UBSAN_OPTIONS",
             "print_stacktrace=1:suppressions=" MQ_SOURCE_DIR "/tests/support/ubsan.supp", 0);
// ... and their LeakSanitizer suppressions (the libpqxx leak above): tests/support/lsan.supp.
[[maybe_unused]] static const int kLsanOptions =
    ::setenv("LSAN_OPTIONS", "suppressions=" MQ_SOURCE_DIR "/tests/support/lsan.supp", 0);
#endif
