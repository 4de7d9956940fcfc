// See sendmail_local_smtp.hpp.
#include "relay/cli/sendmail_local_smtp.hpp"

#include <unistd.h>

#include <string>

#include "relay/cli/maildrop.hpp"
#include "relay/smtp/replies.hpp"
#include "relay/smtp/server_session.hpp"

namespace relay::sendmail {
namespace {

// Every sender and recipient is taken: the relay checks them again when it submits the file, as
// it checks a sendmail command line, and answers the way it answers sendmail (log, exit codes).
class AcceptAll : public smtp::SessionHooks {
public:
    AuthResult authenticate(std::string_view, std::string_view) override { return {}; }
    RouteResult route(std::string_view, std::string_view, std::string_view) override { return {true, "maildrop", {}, 0}; }
};

class Collect : public smtp::MessageSink {
public:
    void message_begin(const Envelope& envelope) override {
        envelope_ = envelope;
        body_.clear();
    }
    void message_data(std::string_view bytes) override { body_.append(bytes); }
    void message_abort() override { body_.clear(); }
    const Envelope& envelope() const { return envelope_; }
    const std::string& body() const { return body_; }

private:
    Envelope envelope_;
    std::string body_;
};

bool write_all(std::string_view bytes) {
    while (!bytes.empty()) {
        ssize_t n = ::write(STDOUT_FILENO, bytes.data(), bytes.size());
        if (n <= 0) return false;
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

}  // namespace

int smtp_on_stdin_to_maildrop(const std::filesystem::path& maildrop_dir, std::uint64_t max_message_size) {
    smtp::SessionPolicy policy;
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) == 0 && host[0]) policy.hostname = host;
    policy.max_message_size = max_message_size;
    policy.auth_offered = false;
    policy.lenient = true;   // a local program, as lenient_networks treats loopback
    AcceptAll hooks;
    Collect sink;
    smtp::ServerSession session(policy, hooks, sink, "127.0.0.1");
    if (!write_all(session.greeting())) return 75;
    std::string pending;
    char buffer[65536];
    for (;;) {
        auto step = session.feed(pending);
        pending.erase(0, step.consumed);
        if (!write_all(step.replies)) return 75;
        switch (step.next) {
        case smtp::ServerSession::Next::commit_message: {
            // The file holds what sendmail's command line would: -f, -i (the body is already
            // unstuffed: a "." line is text) and the recipients after "--".
            std::vector<std::string> args = {"-f", sink.envelope().mail_from, "-i", "--"};
            args.insert(args.end(), sink.envelope().rcpt_to.begin(), sink.envelope().rcpt_to.end());
            const bool kept = maildrop::drop(maildrop_dir, maildrop::encode(args, sink.body())).empty();
            const std::string reply = kept ? session.commit_finished(std::string("maildrop"))
                                           : session.commit_finished(std::nullopt, smtp::replies::kQueueWriteError);
            if (!write_all(reply)) return 75;
            continue;   // commands pipelined behind the data are in `pending`
        }
        case smtp::ServerSession::Next::read_more: {
            ssize_t n = ::read(STDIN_FILENO, buffer, sizeof buffer);
            if (n <= 0) return 0;   // the caller went away without QUIT: what was committed is kept
            pending.append(buffer, static_cast<std::size_t>(n));
            continue;
        }
        default:   // close (QUIT, too many errors); STARTTLS and AUTH are not offered
            return 0;
        }
    }
}

}  // namespace relay::sendmail
