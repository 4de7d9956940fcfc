// The envelope of one accepted message: who sent it, to whom, through which account. The SMTP
// session fills it, the spool stores it next to the body, delivery reads it back.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace relay {

struct Envelope {
    std::string mail_from;              // without angle brackets; empty for the null sender <>
    std::vector<std::string> rcpt_to;   // without angle brackets
    std::string account;                // upstream account that will deliver it
    std::string user;                   // authenticated local user, empty when none
    std::string client_address;         // peer IP as text
    std::string helo;                   // EHLO/HELO argument
    std::string protocol;               // RFC 3848 "with" keyword for the Received header: ESMTPSA etc.
    bool eight_bit = false;             // BODY=8BITMIME was given
    bool dsn = false;                   // a delivery status notification made by this relay: never bounced
};

}  // namespace relay
