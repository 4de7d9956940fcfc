// The HTTP POSTs the OAuth2 token endpoint and Microsoft Graph need, behind an interface so tests
// can fake them. CurlHttpClient is blocking: call it from a worker thread, never from an I/O thread.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace relay::auth {

using FormFields = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
    long status = 0;
    std::string body;
    std::string retry_after{};   // the Retry-After header (RFC 9110 10.2.3), "" when absent
};

// A POST with a bearer token (Microsoft Graph). The token goes in the Authorization header and
// never into an error message.
struct HttpPost {
    std::string url;
    std::string content_type;
    std::string body;
    std::string bearer_token;
    std::size_t max_response = 64 * 1024;   // a longer answer is cut (Graph's errors are small JSON)
    std::chrono::seconds total_timeout{120};
    std::string ca_file;                    // extra trust anchor; system CAs otherwise
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
    // POSTs `request.body`; returns any HTTP status with (at most max_response bytes of) its body.
    // Throws HttpError for transport failures. Test fakes that only serve the token endpoint need not
    // override it.
    virtual HttpResponse post(const HttpPost& request);
};

class CurlHttpClient : public HttpClient {
public:
    struct Options {
        std::chrono::seconds connect_timeout{10};
        std::chrono::seconds total_timeout{30};
        std::string ca_file;    // extra trust anchor (tests); system CAs otherwise
    };
    CurlHttpClient();
    explicit CurlHttpClient(Options options);
    HttpResponse post_form(const std::string& url, const FormFields& form) override;
    HttpResponse post(const HttpPost& request) override;

private:
    Options options_;
};

// application/x-www-form-urlencoded encoding of `form`.
std::string url_encode_form(const FormFields& form);
std::string url_encode(std::string_view text);

}  // namespace relay::auth
