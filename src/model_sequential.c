/*
 * model_sequential.c - one session at a time (socketserver's plain
 * TCPServer).  The session runs inside the server loop, so signals, reload
 * and the watchdog keep working while it is open; the loop stops watching
 * the listeners while a session runs, and other clients wait in the
 * listen backlog.
 */
#include "model.h"
#include "server.h"

static int
sequential_stream(struct server *srv, struct conn *c)
{
	return server_watch(srv, c);
}

static int
sequential_dgram(struct server *srv, struct conn *c)
{
	server_answer_dgram(srv, c);
	return 0;
}

const struct model_ops model_sequential = {
	.id = MODEL_SEQUENTIAL,
	.in_loop = true,
	.stream = sequential_stream,
	.dgram = sequential_dgram,
};
