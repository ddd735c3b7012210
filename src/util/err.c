#include "util/err.h"
#include "util/fmt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *err_progname = "crstream";

static _Thread_local char err_buf[ERR_MAX];

int err_set(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err_buf, sizeof(err_buf), fmt, ap);
	va_end(ap);
	return -1;
}

int err_sys(const char *fmt, ...)
{
	int saved = errno;
	char head[ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	/* Over-long messages are cut at ERR_MAX, deliberately. */
	if (snprintf(err_buf, sizeof(err_buf), "%s: %s", head, strerror(saved)) < 0)
		err_buf[0] = '\0';
	errno = saved;
	return -1;
}

int err_prefix(const char *fmt, ...)
{
	char head[ERR_MAX];
	char tail[ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	memcpy(tail, err_buf, sizeof(tail));
	int n = tail[0] ? snprintf(err_buf, sizeof(err_buf), "%s: %s", head, tail)
			: snprintf(err_buf, sizeof(err_buf), "%s", head);
	if (n < 0)
		err_buf[0] = '\0';
	return -1;
}

const char *err_msg(void)
{
	return err_buf;
}

void err_copy(char *buf, size_t size)
{
	if (size == 0)
		return;
	snprintf(buf, size, "%s", err_buf);
}

void err_clear(void)
{
	err_buf[0] = '\0';
}

/* Messages carry names and text from checkpoints and servers: escaped, so
 * that they stay one harmless line (util/fmt.h). */
void err_print(const char *prog)
{
	fprintf(stderr, "%s: ", prog ? prog : err_progname);
	fputs_escaped(err_buf[0] ? err_buf : "unknown error", stderr);
	fputc('\n', stderr);
}

void warnx_(const char *fmt, ...)
{
	char msg[ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: ", err_progname);
	fputs_escaped(msg, stderr);
	fputc('\n', stderr);
}
