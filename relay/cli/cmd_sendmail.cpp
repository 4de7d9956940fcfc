// `sendmail` (also when the binary is invoked as "sendmail", "mailq" or "newaliases"): a
// /usr/sbin/sendmail for programs that do not speak SMTP. Reads the message on stdin and submits it
// over SMTP to the relay's first listen address (sendmail_submit.hpp); when the relay is down, the
// caller may not read the config, or the config is refused, it leaves the message in the maildrop for
// the relay (maildrop.hpp; -bs: sendmail_local_smtp.hpp) and exits 0, so cron's mail is never thrown
// away. Exit codes are sendmail's (sysexits.h): 0 queued, 64 usage, 65 bad message, 66 no input,
// 67 recipient refused, 69 refused, 75 try again later, 76 protocol error, 78 configuration error.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <pwd.h>
#include <unistd.h>

#include <fmt/format.h>

#include "relay/cli/cli.hpp"
#include "relay/cli/maildrop.hpp"
#include "relay/cli/sendmail_local_smtp.hpp"
#include "relay/cli/sendmail_message.hpp"
#include "relay/cli/sendmail_submit.hpp"

namespace relay::cli {
namespace {

using namespace relay::sendmail;

constexpr const char* kSendmailHelp = R"(usage: smtp-oauth2-relay sendmail [-t] [-i] [-f FROM] [-F NAME] [--config FILE] [RCPT...]
       sendmail [-t] [-i] [-f FROM] [-F NAME] [RCPT...]     (the binary invoked as "sendmail")
       sendmail -bs | -bp | -bi;  mailq;  newaliases;  sendmail -bv RCPT...

Reads a message on stdin and submits it to the local relay (its first listen address) over SMTP.
When the relay is not running, the caller may not read the configuration (it holds secrets), or the
configuration has errors (a fresh install's placeholder client_id), the message goes into the
maildrop (spool_dir/maildrop; $SMTP_OAUTH2_RELAY_SPOOL or /var/spool/smtp-oauth2-relay without the
configuration) and the relay sends it when it runs: exit 0. -bs then answers SMTP itself and keeps
each accepted message there.
  -t        also take recipients from the To:, Cc: and Bcc: headers (Resent-To/Cc/Bcc: when the
            message has them); Bcc: and Resent-Bcc: are removed in every mode
  -i, -oi   a line with a single "." does not end the message
  -f FROM   envelope sender (default: the default account's email, else USER@hostname); -r is the same
  -F NAME   full name for the From: header added when the message has none
  -bm       submit (the default); -bs: SMTP on stdin/stdout; -bp: the queue (mailq); -bi, -I: newaliases;
            -bv: show where each RCPT goes after [aliases] and the alias_file, send nothing
  -B, -C, -N, -R, -V, -X, -L, -h (with a value), -o..., -v, -U, -G, -n, -m, -q: accepted and ignored
  Flags without a value may be grouped as with getopt: -ti is -t -i.
A bare recipient (root, www-data, root@localhost) resolves through [aliases] in the config, then
the alias_file (/etc/aliases), then gets the domain of the default account's email.
The configuration comes from --config, $SMTP_OAUTH2_RELAY_CONFIG or /etc/smtp-oauth2-relay/config.toml.
exit codes (sysexits.h): 0 queued (or kept in the maildrop), 64 usage, 65 message refused as malformed
or too large, 66 no input, 67 recipients refused, 69 refused, 75 relay busy and no maildrop: try later,
76 unexpected reply, 78 configuration error
)";

int fail(int code, const std::string& message) {
    std::fprintf(stderr, "sendmail: %s\n", message.c_str());
    return code;
}

// The arguments as the pickup will parse them again: without --config (the relay uses its own).
std::vector<std::string> without_config(const std::vector<std::string>& args) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "--") {
            out.insert(out.end(), args.begin() + static_cast<long>(i), args.end());
            break;
        }
        if (args[i] == "--config") ++i;
        else if (!args[i].starts_with("--config=")) out.push_back(args[i]);
    }
    return out;
}

}  // namespace

int run_sendmail(const std::vector<std::string>& args) {
    for (const auto& a : args) {
        if (a == "--help") {   // not -h: that is sendmail's hop count
            std::fputs(kSendmailHelp, stdout);
            return kOk;
        }
    }
    Options options;
    std::string config_path;
    if (auto problem = parse_arguments(args, options, config_path); !problem.empty()) {
        std::fprintf(stderr, "sendmail: %s\n\n%s", problem.c_str(), kSendmailHelp);
        return EX_USAGE_;
    }
    if (config_path.empty()) {
        const char* env = std::getenv("SMTP_OAUTH2_RELAY_CONFIG");
        config_path = env && *env ? env : kDefaultConfig;
    }
    if (options.mode == Mode::rebuild_aliases) {
        // Nothing to compile: [aliases] and the alias_file are read at each submission.
        std::printf("newaliases: nothing to rebuild; smtp-oauth2-relay reads [aliases] in %s and its alias_file "
                    "(/etc/aliases by default) each time a message is submitted\n", config_path.c_str());
        return kOk;
    }
    if (options.mode == Mode::list_queue) return run_queue({"list", "--mailq", "--config", config_path});
    // An ordinary user's cron job usually may not read the config (0640: it holds secrets). That
    // is no reason to lose its mail: the maildrop takes it without the config.
    std::optional<conf::Config> config;
    const bool may_not_read = ::access(config_path.c_str(), R_OK) != 0 && errno == EACCES;
    // A config that is there but refused (the package's placeholder client_id before the admin has
    // edited it, or a typo being fixed) stops the relay, not local mail: the maildrop keeps it until
    // a relay with a good config runs, instead of cron throwing it away on exit 78. A missing file
    // means nothing is installed here: 78.
    bool config_refused = false;
    if (!may_not_read) {
        ParsedOptions config_option;
        config_option.values["--config"] = config_path;
        config = load_config_or_report(config_option);
        if (!config && (options.mode != Mode::submit || ::access(config_path.c_str(), F_OK) != 0)) return EX_CONFIG_;
        config_refused = !config;
        if (config && config->relay.listen.empty()) return fail(EX_CONFIG_, "the configuration has no listen address");
    }
    if (options.mode == Mode::smtp_on_stdin) {
        // Symfony Mailer and Laravel run `sendmail -bs` as www-data: with the relay unreachable or the
        // config unreadable, the relay's SMTP machine answers here and the maildrop keeps each message.
        bool reached = true;
        if (config) {
            const int code = smtp_on_stdin(relay_address(*config), &reached);
            if (reached) return code;
        }
        return smtp_on_stdin_to_maildrop(maildrop::directory(config ? config->relay.spool_dir : maildrop::default_spool_dir()),
                                         config ? config->relay.max_message_size : 64ull << 20);
    }
    if (options.mode == Mode::verify) {
        if (!config) return fail(EX_CONFIG_, "-bv needs to read " + config_path + " (permission denied: use sudo)");
        if (options.recipients.empty()) return fail(EX_USAGE_, "-bv: name the recipients to look up");
        for (const auto& r : options.recipients) {
            std::string targets;
            for (const auto& a : resolve_aliases(*config, {r})) targets += (targets.empty() ? "" : ", ") + a;
            std::printf("%s... deliverable: %s\n", r.c_str(), targets.c_str());
        }
        return kOk;
    }

    const std::uint64_t limit = (config ? config->relay.max_message_size : 64ull << 20) + 65536;
    std::string input;
    char chunk[65536];
    for (;;) {
        std::size_t n = std::fread(chunk, 1, sizeof chunk, stdin);
        input.append(chunk, n);
        if (n < sizeof chunk) break;
        if (input.size() > limit) return fail(EX_DATAERR_, fmt::format("message larger than {} bytes", limit - 65536));
    }
    if (std::ferror(stdin)) return fail(EX_NOINPUT_, std::string("cannot read the message on stdin: ") + std::strerror(errno));
    if (!options.recipients_from_headers && options.recipients.empty())
        return fail(EX_USAGE_, "no recipients given (use -t to read them from the headers)");
    // Said now, not by the relay later: from the maildrop such a message could only be dropped.
    if (prepare(input, options, "", "").recipients.empty())
        return fail(EX_USAGE_, "no recipients in the arguments or To:/Cc:/Bcc:");

    std::string user = "nobody";
    if (const passwd* pw = ::getpwuid(::getuid())) user = pw->pw_name;
    std::string why_maildrop = config_refused ? config_path + " has errors (above); the relay cannot run until they are fixed"
                                              : "may not read " + config_path;
    if (config) {
        auto result = submit_message(*config, options, input, user);
        if (result.exit_code == 0) return kOk;
        if (result.reached_relay || result.exit_code != EX_TEMPFAIL_) return fail(result.exit_code, result.problem);
        why_maildrop = result.problem;
    }
    const auto dir = maildrop::directory(config ? config->relay.spool_dir : maildrop::default_spool_dir());
    if (auto problem = maildrop::drop(dir, maildrop::encode(without_config(args), input)); !problem.empty())
        return fail(EX_TEMPFAIL_, fmt::format("{}; the maildrop did not take the message either: {}", why_maildrop, problem));
    if (config || config_refused) std::fprintf(stderr, "sendmail: %s; the message waits in %s and is sent when the relay runs\n",
                             why_maildrop.c_str(), dir.string().c_str());
    return kOk;
}

}  // namespace relay::cli
