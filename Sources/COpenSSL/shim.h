#ifndef ORDERFLEET_COPENSSL_SHIM_H
#define ORDERFLEET_COPENSSL_SHIM_H

/* The system's libcrypto (OpenSSL 3, Debian's libssl-dev), for the digests the
 * fleet derives ids and checks signatures with. SHA1_Init and HMAC_CTX are
 * deprecated in OpenSSL 3 in favour of EVP, whose one-shot calls look the
 * algorithm up and allocate a context each time; every output record takes two
 * SHA-1s (its event id and its trace span), so the stack-context functions are
 * used, and the deprecation notes are silenced here only. */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stddef.h>

/* SHA-1 of a followed by b (20 bytes into out). */
static inline void orderfleet_sha1(const void *a, size_t a_len, const void *b, size_t b_len, unsigned char *out) {
    SHA_CTX context;
    SHA1_Init(&context);
    SHA1_Update(&context, a, a_len);
    SHA1_Update(&context, b, b_len);
    SHA1_Final(out, &context);
}

/* SHA-256 of data (32 bytes into out). */
static inline void orderfleet_sha256(const void *data, size_t length, unsigned char *out) {
    SHA256_CTX context;
    SHA256_Init(&context);
    SHA256_Update(&context, data, length);
    SHA256_Final(out, &context);
}

/* HMAC-SHA256 under key of a followed by b (32 bytes into out); 0 when
 * libcrypto could not allocate its context. */
static inline int orderfleet_hmac_sha256(
    const void *key, size_t key_len, const void *a, size_t a_len, const void *b, size_t b_len, unsigned char *out) {
    /* A NULL key would mean "the context's previous key"; an empty one is a key too. */
    static const unsigned char empty_key = 0;
    if (key == NULL) key = &empty_key;
    HMAC_CTX *context = HMAC_CTX_new();
    if (context == NULL) return 0;
    unsigned int length = 0;
    int ok = HMAC_Init_ex(context, key, (int)key_len, EVP_sha256(), NULL)
        && HMAC_Update(context, a, a_len)
        && HMAC_Update(context, b, b_len)
        && HMAC_Final(context, out, &length);
    HMAC_CTX_free(context);
    return ok && length == 32;
}

#endif
