// Replies after which an account is put on hold instead of being retried: Exchange Online answers
// repeated permanent errors with continuous-error throttling of the whole mailbox, and these causes
// need a person anyway (PROVIDERS.md): SMTP AUTH disabled (5.7.139), no SendAs right (5.7.60,
// 5.2.252), the 5.2.251-5.2.255 throttling family itself. The hold lasts until the cause may have
// changed: a config reload, a new token file, or `queue retry`. Pure, so the table is unit-tested.
#pragma once

#include <optional>
#include <string>

#include "relay/smtp/reply.hpp"

namespace relay {

// The admin's next step when `reply` must put the account on hold; nullopt otherwise.
inline std::optional<std::string> hold_action_for(const smtp::Reply& reply) {
    if (!reply.permanent()) return std::nullopt;
    const std::string code = reply.enhanced();
    if (code == "5.7.139")
        return "enable SMTP AUTH for the mailbox (Set-CASMailbox -Identity <mailbox> "
               "-SmtpClientAuthenticationDisabled $false) or tenant, then: smtp-oauth2-relay queue retry --all";
    if (code == "5.7.60" || code == "5.2.252")
        return "grant the mailbox SendAs rights for the sender, or correct send_as in the config; "
               "then reload or run: smtp-oauth2-relay queue retry --all";
    if (code == "5.2.251" || code == "5.2.253" || code == "5.2.254" || code == "5.2.255")
        return "Exchange Online is throttling the mailbox after repeated errors; fix the cause, wait, "
               "then run: smtp-oauth2-relay queue retry --all";
    return std::nullopt;
}

// Exchange Online's daily recipient quota (10,000 a day): "554 5.2.0 STOREDRV.Submission.Exception:
// SubmissionQuotaExceededException". Permanent in form, temporary in fact: the message waits and the
// account backs off instead of the message failing.
inline bool quota_exceeded(const smtp::Reply& reply) {
    for (const auto& line : reply.lines)
        if (line.find("QuotaExceeded") != std::string::npos) return true;
    return false;
}

}  // namespace relay
