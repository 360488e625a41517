/*
 * The frame guard: watches the bytes a client sends on one socket, before
 * libwebsockets parses them, and finds what RFC 6455 forbids and
 * libwebsockets 4.1 lets through or reports with no cause we can see:
 * unmasked client frames, reserved bits and opcodes, fragmented or
 * oversized control frames, and broken fragmentation.
 *
 * Before the upgrade it also cuts reads at the end of each HTTP header
 * block, so that libwebsockets never holds WebSocket bytes the guard has not
 * seen when the connection becomes a WebSocket.
 *
 * Pure byte logic, no I/O: src/recv_hook.c feeds it.  One guard per socket,
 * used by the socket's owning worker thread only.
 */
#ifndef SB_WSGUARD_H
#define SB_WSGUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sb_wsguard_mode {
	SB_WSG_HTTP = 0,	/* before the upgrade */
	SB_WSG_WS,		/* frames */
	SB_WSG_FAILED,		/* a violation was found: read nothing more */
	SB_WSG_CLOSED,		/* after the close frame: what comes is the
				 * client's close reply, or nothing: end */
};

struct sb_wsguard {
	uint8_t mode;		/* enum sb_wsguard_mode */
	uint8_t state;		/* frame parser state (private) */
	uint8_t need;		/* header bytes still to come */
	uint8_t crlf;		/* HTTP: bytes of "\r\n\r\n" matched so far */
	bool in_message;	/* a fragmented data message is open */
	bool control;		/* the current frame is a control frame */
	bool fin;		/* the current frame is a final one */
	uint32_t messages;	/* data messages completed (wraps) */
	uint64_t remain;	/* payload bytes of the current frame to skip */
};

void sb_wsguard_init(struct sb_wsguard *g);

/* HTTP mode: how many of the n bytes at p to consume now: up to and
 * including the end of the first header block in them, else all n. */
size_t sb_wsguard_http(struct sb_wsguard *g, const void *p, size_t n);

/* Switches to frame mode (at the upgrade). */
void sb_wsguard_upgrade(struct sb_wsguard *g);

/*
 * Frame mode: checks n more bytes.  Returns n when all is well.  On a
 * violation the guard fails (mode SB_WSG_FAILED) and the return value is
 * how many of the n bytes come before the offending frame (0 when that frame
 * began in an earlier call); what follows must not reach the parser.
 */
size_t sb_wsguard_frames(struct sb_wsguard *g, const void *p, size_t n);

/* Whether the client is inside a frame or a fragmented message: it owes
 * the rest (sb_liveness.h bounds how long). */
bool sb_wsguard_unfinished(const struct sb_wsguard *g);

/* The header of an unmasked, final text frame of len payload bytes, as the
 * server sends them: writes 2, 4 or 10 bytes to out and returns how many. */
size_t sb_ws_text_header(unsigned char out[10], uint64_t len);

#endif
