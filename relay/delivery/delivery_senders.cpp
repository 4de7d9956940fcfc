// Who a message is sent as, and senders Exchange just refused (issue 11 item 3): the glue between
// the pure sender_rewrite / denied_senders modules and the workers. See agent.hpp.
#include "relay/delivery/agent.hpp"

#include <fmt/format.h>

#include "relay/core/ascii.hpp"
#include "relay/core/blocking.hpp"
#include "relay/core/log.hpp"
#include "relay/delivery/sender_rewrite.hpp"
#include "relay/delivery/upstream_message.hpp"

namespace relay {
namespace {

// Enough for any ordinary header; a larger one is sent unchanged (rewrite_from_header says so).
constexpr std::size_t kHeaderReadLimit = 64 * 1024;

}  // namespace

asio::awaitable<QueuedMessage> DeliveryAgent::Impl::upstream_copy(const Account& a, const QueuedMessage& message,
                                                                  std::string& header_from) {
    QueuedMessage upstream = message;
    upstream.envelope.mail_from = upstream_sender(a.config, message.envelope.mail_from);
    // The header is read for every attempt (at most 64 KiB, just written, so from the page cache):
    // the From: is half of the sender Exchange checks.
    auto read_job = [message] { return read_stored(message, kHeaderReadLimit); };
    const std::string start = co_await run_blocking(pool, std::move(read_job));
    const bool complete = start.size() == message.size;
    header_from = header_from_address(start, complete);
    auto rewrite = rewrite_from_header(a.config, start, complete);
    if (upstream.envelope.mail_from != message.envelope.mail_from || rewrite)
        log::info("sender_rewritten", {{"queue_id", message.id}, {"account", a.config.name},
                                       {"from", message.envelope.mail_from}, {"sent_as", upstream.envelope.mail_from},
                                       {"header_from", rewrite ? rewrite->original_from : std::string("(unchanged)")}});
    if (!rewrite) co_return upstream;
    header_from = core::lower(a.config.email);
    upstream.size = message.size - rewrite->replaced + rewrite->header.size();
    upstream.header_override = std::move(rewrite->header);
    upstream.header_replaced = rewrite->replaced;
    co_return upstream;
}

std::optional<DeniedSenders::Denial> DeliveryAgent::Impl::recently_denied(Account& a, const QueuedMessage& upstream,
                                                                          const std::string& header_from) {
    const std::string& sender = upstream.envelope.mail_from;
    auto denial = a.denied.find(sender, header_from);
    if (!denial) return std::nullopt;
    const auto ago = std::chrono::duration_cast<std::chrono::seconds>(clock.now() - denial->at).count();
    const auto left = std::chrono::duration_cast<std::chrono::seconds>(denial->until - clock.now()).count();
    log::warning("sender_denied_recently", {{"queue_id", upstream.id}, {"account", a.config.name},
                                            {"from", sender}, {"header_from", header_from},
                                            {"earlier_queue_id", denial->queue_id},
                                            {"earlier_s_ago", static_cast<long>(ago)},
                                            {"upstream_reply", denial->reply},
                                            {"detail", fmt::format("not sent: Exchange refused this sender for {} {} s ago; "
                                                                   "sent again after {} s, or now by queue retry",
                                                                   denial->queue_id, ago, left)}});
    return denial;
}

void DeliveryAgent::Impl::sender_refused(Account& a, const QueuedMessage& upstream, const std::string& header_from,
                                         const smtp::Reply& reply) {
    const bool remembered =
        a.denied.remember(upstream.envelope.mail_from, header_from, a.config.email, reply.text(), upstream.id);
    log::error("sender_denied", {{"queue_id", upstream.id}, {"account", a.config.name},
                                 {"from", upstream.envelope.mail_from}, {"header_from", header_from},
                                 {"upstream_reply", reply.text()},
                                 {"remembered_s", remembered ? static_cast<long>(kDeniedSenderMemory.count()) : 0L},
                                 {"action", kSendAsAction}});
}

}  // namespace relay
