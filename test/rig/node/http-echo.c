// A tiny static HTTP server for the rig node's tests: answers every request on $PORT (default
// 8080) with 200 and "<hostname>\n" (the pod name), so a test can tell which pod a Service hit.
// Exits on SIGTERM: as PID 1 in a container it would otherwise ignore it and delay pod deletion.
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static void bye(int sig) { (void)sig; _exit(0); }

int main(void) {
  signal(SIGTERM, bye);
  signal(SIGINT, bye);
  signal(SIGPIPE, SIG_IGN);
  const char *p = getenv("PORT");
  int port = p ? atoi(p) : 8080;
  char host[256] = "unknown";
  gethostname(host, sizeof host - 1);

  int s = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = {htonl(INADDR_ANY)}};
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 64) < 0) {
    perror("http-echo");
    return 1;
  }
  printf("http-echo %s listening on :%d\n", host, port);
  fflush(stdout);

  char req[4096], resp[512];
  for (;;) {
    int c = accept(s, NULL, NULL);
    if (c < 0) continue;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t n = read(c, req, sizeof req); // one read: the tests send small GETs
    if (n > 0) {
      int len = snprintf(resp, sizeof resp,
                         "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                         "Connection: close\r\n\r\n%s\n",
                         strlen(host) + 1, host);
      if (write(c, resp, len) < 0) perror("write");
    }
    close(c);
  }
}
