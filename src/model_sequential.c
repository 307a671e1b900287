/*
 * model_sequential.c - one session at a time (socketserver's plain
 * TCPServer).  The session runs inside the main loop, so signals, reload
 * and the watchdog keep working while it is open; the loop stops watching
 * the stream listeners while a session runs, and other clients wait in
 * the listen backlog.  Datagrams are answered in the main loop.
 */
#include "model.h"

static int
sequential_stream(const struct model_env *env, struct conn *c)
{
	connloop_start(env->main, c);
	return 0;
}

const struct model_ops model_sequential = {
	.id = MODEL_SEQUENTIAL,
	.one_at_a_time = true,
	.dgram_in_loop = true,
	.stream = sequential_stream,
};
