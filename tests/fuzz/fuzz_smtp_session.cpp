// Fuzzes the pure SMTP server session over an in-memory stream: the input is cut into random reads
// and fed the way the Asio layer does (unconsumed bytes carried over, STARTTLS drops the rest of the
// read, end of data commits). Checks that every reply is a well-formed SMTP reply line, that the
// carried-over buffer stays bounded (a client cannot make the server buffer without limit), and that
// the session never asks for something impossible (feed while a commit is pending).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <fuzzer/FuzzedDataProvider.h>

#include "relay/smtp/server_session.hpp"

namespace {

using namespace relay::smtp;

struct Hooks final : SessionHooks {
    bool locked = false;
    AuthResult authenticate(std::string_view user, std::string_view password) override {
        if (user == "scanner" && password == "pw") return {true, "office"};
        return {};
    }
    RouteResult route(std::string_view user, std::string_view account, std::string_view) override {
        if (!user.empty()) return {true, std::string(account), {}};
        return {true, "default", {}};
    }
    std::string auth_refusal() override { return locked ? "454 4.7.0 locked" : ""; }
};

struct Sink final : MessageSink {
    bool open = false;
    std::size_t bytes = 0;
    void message_begin(const relay::Envelope&) override {
        if (open) std::abort();
        open = true;
        bytes = 0;
    }
    void message_data(std::string_view b) override {
        if (!open) std::abort();
        bytes += b.size();
    }
    void message_abort() override { open = false; }
};

// Every line "ddd" + (' ' or '-') + text, CRLF-terminated; codes 2xx..5xx.
void check_replies(std::string_view replies) {
    while (!replies.empty()) {
        const std::size_t eol = replies.find("\r\n");
        if (eol == std::string_view::npos || eol < 3) std::abort();
        const std::string_view line = replies.substr(0, eol);
        if (line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' || line[2] < '0' || line[2] > '9') std::abort();
        if (line.size() > 3 && line[3] != ' ' && line[3] != '-') std::abort();
        if (line.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) std::abort();
        replies.remove_prefix(eol + 2);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider provider(data, size);
    SessionPolicy policy;
    policy.hostname = "relay.test";
    policy.max_message_size = 4096;
    policy.require_auth = provider.ConsumeBool();
    policy.starttls_offered = provider.ConsumeBool();
    policy.plaintext_auth_allowed = provider.ConsumeBool();
    policy.max_recipients = 5;
    policy.max_errors = provider.ConsumeIntegralInRange<std::size_t>(1, 30);
    policy.data.normalize_bare_newlines = provider.ConsumeBool();
    policy.lenient = provider.ConsumeBool();   // bare-LF command lines, unbracketed paths, long lines
    Hooks hooks;
    hooks.locked = provider.ConsumeBool();
    Sink sink;
    ServerSession session(policy, hooks, sink, "192.0.2.1");
    check_replies(session.greeting());

    std::string pending;
    while (provider.remaining_bytes() > 0) {
        const std::size_t length = provider.ConsumeIntegralInRange<std::size_t>(1, 600);
        pending += provider.ConsumeBytesAsString(length);
        std::string_view input = pending;
        bool closed = false, tls = false;
        while (true) {
            ServerSession::Step step = session.feed(input);
            if (step.consumed > input.size()) std::abort();
            check_replies(step.replies);
            input.remove_prefix(step.consumed);
            if (step.next == ServerSession::Next::commit_message) {
                if (!sink.open) std::abort();
                sink.open = false;
                check_replies(session.commit_finished(std::string("QUEUEID")));
                continue;
            }
            if (step.next == ServerSession::Next::close) closed = true;
            if (step.next == ServerSession::Next::start_tls) tls = true;
            break;
        }
        if (closed) break;
        if (tls) {
            session.tls_started();
            input = {};
        }
        pending = std::string(input);
        // What is carried over is at most one incomplete line under the AUTH line limit.
        if (pending.size() > policy.max_auth_line) std::abort();
    }
    check_replies(session.timeout_reply());
    return 0;
}
