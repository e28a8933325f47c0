#include "http/outbound.h"

#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>

namespace inkwell::http {
namespace {

// curl_global_init is not thread-safe: the first client runs it, once per process. It is never
// undone (curl_global_cleanup would race with clients in other threads).
void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw OutboundError("outbound: curl_global_init failed");
    }
  });
}

bool starts_with_nocase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), text.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) ==
                  std::tolower(static_cast<unsigned char>(b));
         });
}

bool has_line_break(std::string_view text) {
  return text.find_first_of("\r\n") != std::string_view::npos ||
         text.find('\0') != std::string_view::npos;
}

struct EasyDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
struct ListDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using Easy = std::unique_ptr<CURL, EasyDeleter>;
using HeaderList = std::unique_ptr<curl_slist, ListDeleter>;

// Where the write callback collects the body; it stops the transfer past the limit.
struct Sink {
  std::string body;
  std::size_t limit = 0;
  bool too_large = false;
};

extern "C" std::size_t write_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto& sink = *static_cast<Sink*>(user);
  const std::size_t bytes = size * count;
  if (sink.body.size() + bytes > sink.limit) {
    sink.too_large = true;
    return 0;  // anything but `bytes` makes curl fail with CURLE_WRITE_ERROR
  }
  sink.body.append(data, bytes);
  return bytes;
}

// Every setopt returns a code; a failure here means this libcurl lacks a feature we rely on.
template <typename T>
void set(CURL* handle, CURLoption option, T value) {
  if (const CURLcode code = curl_easy_setopt(handle, option, value); code != CURLE_OK) {
    throw OutboundError(std::string("outbound: curl option failed: ") + curl_easy_strerror(code));
  }
}

}  // namespace

OutboundClient::OutboundClient(std::size_t max_response_bytes)
    : max_response_bytes_(max_response_bytes) {
  init_curl_once();
}

OutboundResponse OutboundClient::send(const OutboundRequest& request) const {
  // Checked here as well as by CURLOPT_PROTOCOLS_STR so the message is clear and no other
  // scheme (file://, ftp://, a scheme-less guess) ever reaches curl.
  if (!starts_with_nocase(request.url, "http://") && !starts_with_nocase(request.url, "https://")) {
    throw OutboundError("outbound: only http:// and https:// URLs are allowed");
  }
  if (has_line_break(request.url) || has_line_break(request.method) || request.method.empty()) {
    throw OutboundError("outbound: malformed URL or method");
  }

  // Declared before the handle so they outlive it: curl keeps pointers to all three.
  std::array<char, CURL_ERROR_SIZE> error_text{};
  Sink sink;
  sink.limit = max_response_bytes_;
  HeaderList headers;
  Easy easy(curl_easy_init());
  if (!easy) {
    throw OutboundError("outbound: curl_easy_init failed");
  }
  CURL* handle = easy.get();

  set(handle, CURLOPT_ERRORBUFFER, error_text.data());
  set(handle, CURLOPT_URL, request.url.c_str());
#if LIBCURL_VERSION_NUM >= 0x075500  // 7.85: the string form; the bitmask form is deprecated
  set(handle, CURLOPT_PROTOCOLS_STR, "http,https");
  set(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  set(handle, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
  set(handle, CURLOPT_REDIR_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  set(handle, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM for DNS timeouts in a threaded process
  set(handle, CURLOPT_FOLLOWLOCATION, 0L);
  set(handle, CURLOPT_SSL_VERIFYPEER, 1L);
  set(handle, CURLOPT_SSL_VERIFYHOST, 2L);
  set(handle, CURLOPT_TIMEOUT_MS,
      static_cast<long>(std::max<std::int64_t>(1, request.timeout.count())));
  set(handle, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(max_response_bytes_));
  set(handle, CURLOPT_WRITEFUNCTION, write_body);
  set(handle, CURLOPT_WRITEDATA, static_cast<void*>(&sink));

  if (request.method == "GET") {
    set(handle, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    set(handle, CURLOPT_NOBODY, 1L);
  } else {
    if (request.method != "POST") {
      set(handle, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }
    if (request.method == "POST" || !request.body.empty()) {
      set(handle, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
      set(handle, CURLOPT_POSTFIELDS, request.body.data());
    }
  }

  auto append = [&headers](const std::string& line) {
    // On failure curl_slist_append returns null and leaves the list as it was.
    curl_slist* head = curl_slist_append(headers.get(), line.c_str());
    if (head == nullptr) {
      throw OutboundError("outbound: out of memory building headers");
    }
    (void)headers.release();
    headers.reset(head);
  };
  for (const auto& [name, value] : request.headers) {
    if (name.empty() || has_line_break(name) || has_line_break(value) ||
        name.find(':') != std::string::npos) {
      throw OutboundError("outbound: malformed header");
    }
    // "Name:" would remove the header in curl; "Name;" sends it with an empty value.
    std::string line = name;
    if (value.empty()) {
      line += ';';
    } else {
      line += ": ";
      line += value;
    }
    append(line);
  }
  append("Expect:");  // no 100-continue round trip for larger bodies
  set(handle, CURLOPT_HTTPHEADER, headers.get());

  const CURLcode code = curl_easy_perform(handle);
  if (sink.too_large || code == CURLE_FILESIZE_EXCEEDED) {
    throw OutboundError("outbound: response larger than " + std::to_string(max_response_bytes_) +
                        " bytes");
  }
  if (code != CURLE_OK) {
    const std::string detail = error_text[0] != '\0' ? error_text.data() : curl_easy_strerror(code);
    throw OutboundError("outbound: " + detail);
  }

  OutboundResponse response;
  long status = 0;
  curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &status);
  response.status = static_cast<int>(status);
  char* content_type = nullptr;
  if (curl_easy_getinfo(handle, CURLINFO_CONTENT_TYPE, &content_type) == CURLE_OK &&
      content_type != nullptr) {
    response.content_type = content_type;
  }
  response.body = std::move(sink.body);
  return response;
}

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields) {
  static constexpr std::string_view kHex = "0123456789ABCDEF";
  std::string out;
  auto encode = [&out](std::string_view text) {
    for (const char c : text) {
      const auto byte = static_cast<unsigned char>(c);
      const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                              (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                              c == '~';
      if (unreserved) {
        out += c;
      } else if (c == ' ') {
        out += '+';
      } else {
        out += '%';
        out += kHex[byte >> 4U];
        out += kHex[byte & 0x0FU];
      }
    }
  };
  for (const auto& [name, value] : fields) {
    if (!out.empty()) {
      out += '&';
    }
    encode(name);
    out += '=';
    encode(value);
  }
  return out;
}

}  // namespace inkwell::http
