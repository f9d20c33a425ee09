/* SPDX-License-Identifier: Apache-2.0 */
/* git-client: a minimal client of Debian 13's libgit2 (its public API only), for
 * tests/realapps.bats. libgit2 talks HTTPS through its own Mbed TLS stream, whose BIO callbacks
 * wrap libgit2's socket stream: the code under test is libgit2's, this file only drives it.
 *
 * usage: git-client CA_FILE TIMEOUT_MS clone URL DIR
 *        git-client CA_FILE TIMEOUT_MS push DIR REFSPEC
 * TIMEOUT_MS > 0 sets GIT_OPT_SET_SERVER_TIMEOUT (libgit2 then makes the socket non-blocking and
 * polls with that timeout inside its BIO); 0 leaves libgit2's default (blocking, no timeout).
 * Exit 0 on success; otherwise libgit2's error on stderr and exit 1. */
#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what)
{
	const git_error *e = git_error_last();
	fprintf(stderr, "git-client: %s: %s\n", what,
		e && e->message ? e->message : "(no message)");
	return 1;
}

/* A push the server refused arrives here, not as an error of git_remote_push. */
static int push_status(const char *ref, const char *status, void *payload)
{
	if (status) {
		fprintf(stderr, "git-client: the server refused %s: %s\n", ref, status);
		*(int *)payload = 1;
	}
	return 0;
}

static int do_push(const char *dir, char *refspec)
{
	git_repository *repo = NULL;
	git_remote *remote = NULL;
	git_push_options opts;
	git_strarray specs = { &refspec, 1 };
	int refused = 0, rc = 1;

	git_push_options_init(&opts, GIT_PUSH_OPTIONS_VERSION);
	opts.callbacks.push_update_reference = push_status;
	opts.callbacks.payload = &refused;
	if (git_repository_open(&repo, dir) < 0)
		rc = fail("open");
	else if (git_remote_lookup(&remote, repo, "origin") < 0)
		rc = fail("remote origin");
	else if (git_remote_push(remote, &specs, &opts) < 0)
		rc = fail("push");
	else
		rc = refused;
	git_remote_free(remote);
	git_repository_free(repo);
	return rc;
}

int main(int argc, char **argv)
{
	git_repository *repo = NULL;
	int timeout, rc;

	if (argc != 6 || (strcmp(argv[3], "clone") && strcmp(argv[3], "push"))) {
		fprintf(stderr,
			"usage: git-client CA TIMEOUT_MS clone URL DIR | push DIR REFSPEC\n");
		return 2;
	}
	timeout = atoi(argv[2]);
	if (git_libgit2_init() < 0)
		return fail("init");
	if (git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, argv[1], NULL) < 0)
		return fail("CA file");
	if (timeout > 0 && git_libgit2_opts(GIT_OPT_SET_SERVER_TIMEOUT, timeout) < 0)
		return fail("server timeout");
	if (!strcmp(argv[3], "push"))
		rc = do_push(argv[4], argv[5]);
	else if (git_clone(&repo, argv[4], argv[5], NULL) < 0)
		rc = fail("clone");
	else
		rc = 0;
	git_repository_free(repo);
	git_libgit2_shutdown();
	return rc;
}
