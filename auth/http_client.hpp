// The HTTP POST the OAuth2 token endpoint needs, behind an interface so tests can fake it.
// CurlHttpClient is blocking: call it from a worker thread, never from an I/O thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace relay::auth {

using FormFields = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
    long status = 0;
    std::string body;
};

// Transport failure: DNS, connect, TLS verification, timeout. The message names the URL (never
// the form body, which carries secrets).
class HttpError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class HttpClient {
public:
    virtual ~HttpClient() = default;
    // POSTs application/x-www-form-urlencoded `form` to `url`; returns any HTTP status with its body.
    virtual HttpResponse post_form(const std::string& url, const FormFields& form) = 0;
};

class CurlHttpClient : public HttpClient {
public:
    struct Options {
        std::chrono::seconds connect_timeout{10};
        std::chrono::seconds total_timeout{30};
        std::string ca_file;    // extra trust anchor (tests); system CAs otherwise
        // A token response is a few KiB; a hostile or broken endpoint once sent 50 MB (issue 13,
        // item 4). Beyond this the transfer is aborted as an HttpError.
        std::size_t max_body = 1 << 20;
    };
    CurlHttpClient();
    explicit CurlHttpClient(Options options);
    HttpResponse post_form(const std::string& url, const FormFields& form) override;

private:
    Options options_;
};

// application/x-www-form-urlencoded encoding of `form`.
std::string url_encode_form(const FormFields& form);
std::string url_encode(std::string_view text);

}  // namespace relay::auth
