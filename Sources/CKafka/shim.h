#ifndef ORDERFLEET_CKAFKA_SHIM_H
#define ORDERFLEET_CKAFKA_SHIM_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* The offset and partition sentinels of rdkafka.h are macros with casts,
 * which Swift does not import. */
static inline int32_t ckafka_partition_ua(void) { return RD_KAFKA_PARTITION_UA; }
static inline int64_t ckafka_offset_beginning(void) { return RD_KAFKA_OFFSET_BEGINNING; }
static inline int64_t ckafka_offset_end(void) { return RD_KAFKA_OFFSET_END; }
static inline int64_t ckafka_offset_stored(void) { return RD_KAFKA_OFFSET_STORED; }
static inline int64_t ckafka_offset_invalid(void) { return RD_KAFKA_OFFSET_INVALID; }

/* One non-variadic produce call: Swift cannot call rd_kafka_producev (it is
 * variadic), and building an rd_kafka_vu_t array per message from Swift costs
 * more than this single inline call. Headers, if given, are owned by
 * librdkafka only when the call succeeds. A NULL value is a tombstone. */
static inline rd_kafka_resp_err_t ckafka_produce(rd_kafka_t *rk, rd_kafka_topic_t *rkt,
                                                 int32_t partition,
                                                 const void *key, size_t key_len,
                                                 const void *value, size_t value_len,
                                                 rd_kafka_headers_t *headers,
                                                 void *msg_opaque) {
        if (headers)
                return rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(partition),
                                         RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                         RD_KAFKA_V_KEY(key, key_len),
                                         RD_KAFKA_V_VALUE((void *)value, value_len),
                                         RD_KAFKA_V_HEADERS(headers),
                                         RD_KAFKA_V_OPAQUE(msg_opaque), RD_KAFKA_V_END);
        /* Without headers the plain call does the same work without walking a
         * variadic argument list (kcat produces this way too); it reports its
         * error through errno, read back as librdkafka's error code. */
        if (rd_kafka_produce(rkt, partition, RD_KAFKA_MSG_F_COPY, (void *)value, value_len,
                             key, key_len, msg_opaque) == -1)
                return rd_kafka_last_error();
        return RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* glibc keeps the pages of freed fetch buffers in its arenas; a reader that just
 * read whole partitions hands them back with this. A no-op elsewhere. */
static inline void ckafka_release_free_memory(void) {
#ifdef __GLIBC__
        malloc_trim(0);
#endif
}

/* librdkafka's own table of its configuration properties (what CONFIGURATION.md
 * is made from: name | scope | range | default | ...), as one string the caller
 * frees; NULL if no memory. It is only printed to a FILE, hence the memory stream. */
static inline char *ckafka_properties_table(void) {
        char *text = NULL;
        size_t size = 0;
        FILE *stream = open_memstream(&text, &size);
        if (!stream)
                return NULL;
        rd_kafka_conf_properties_show(stream);
        fclose(stream);
        return text;
}

#endif
