// The KERNEL's share of the I/O floor: the same job as io-floor-server.ts (answer HELLO with
// WELCOME, read and drop every frame, write one ready-made 1925-byte AUDIO frame of silence to
// every user every 20 ms), in C with epoll and a timerfd: one read() per readable socket, one
// write() per user per tick, and almost nothing else. What it costs per client frame is what the
// system calls and loopback TCP cost on this machine; io-floor-server.ts minus this is Node's part.
//
// Not part of the course: a measuring stick for BENCHMARKS.md. Build and measure with
//   cc -O2 -o /tmp/io-floor-server bench/io-floor-server.c
//   npm run bench -- --server "/tmp/io-floor-server {port}" --clients 200 --room-size 8 --seconds 10
//
// Deliberately minimal: no limits, no validation, WELCOME carries a fixed name. Never expose it.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

enum { TYPE_HELLO = 0x01, TYPE_WELCOME = 0x02, TYPE_AUDIO = 0x03 };
enum { HEADER_BYTES = 5, FRAME_BYTES = 1920, MAX_FDS = 65536, MAX_EVENTS = 256 };

// Per connection: where the parser stands in the current frame.
struct connection {
  uint8_t header[HEADER_BYTES];
  int header_filled;
  uint32_t payload_left;
  int joined;
};

static struct connection *connections[MAX_FDS];
static int users[MAX_FDS];
static int user_count;

static void put_header(uint8_t *out, uint8_t type, uint32_t length) {
  out[0] = type;
  out[1] = length >> 24;
  out[2] = length >> 16;
  out[3] = length >> 8;
  out[4] = length;
}

static void forget(int fd) {
  for (int i = 0; i < user_count; i++) {
    if (users[i] == fd) {
      users[i] = users[--user_count];
      break;
    }
  }
  free(connections[fd]);
  connections[fd] = NULL;
  close(fd);
}

static void welcome(int fd) {
  static const char payload[] = "{\"name\":\"user\",\"room\":\"bench\",\"sample_rate\":48000,\"frame_samples\":960}";
  uint8_t frame[HEADER_BYTES + sizeof payload];
  put_header(frame, TYPE_WELCOME, sizeof payload - 1);
  memcpy(frame + HEADER_BYTES, payload, sizeof payload - 1);
  if (write(fd, frame, HEADER_BYTES + sizeof payload - 1) < 0) return;
  connections[fd]->joined = 1;
  users[user_count++] = fd;
}

// Walks the bytes of one read through the frame layout; payloads are skipped, not kept.
static void parse(int fd, const uint8_t *bytes, size_t length) {
  struct connection *c = connections[fd];
  size_t offset = 0;
  while (offset < length) {
    if (c->header_filled < HEADER_BYTES) {
      c->header[c->header_filled++] = bytes[offset++];
      if (c->header_filled < HEADER_BYTES) continue;
      c->payload_left = (uint32_t)c->header[1] << 24 | c->header[2] << 16 | c->header[3] << 8 | c->header[4];
    } else {
      size_t take = length - offset < c->payload_left ? length - offset : c->payload_left;
      offset += take;
      c->payload_left -= take;
    }
    if (c->payload_left == 0) {
      if (c->header[0] == TYPE_HELLO && !c->joined) welcome(fd);
      c->header_filled = 0;
    }
  }
}

int main(int argc, char **argv) {
  int one = 1;
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(argc > 1 ? atoi(argv[1]) : 0)};
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t address_length = sizeof address;
  if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, 1024) != 0 ||
      getsockname(listener, (struct sockaddr *)&address, &address_length) != 0) {
    perror("io-floor-server: listen");
    return 1;
  }
  printf("listening on 127.0.0.1:%d\n", ntohs(address.sin_port));
  fflush(stdout);

  int poller = epoll_create1(0);
  struct epoll_event event = {.events = EPOLLIN, .data.fd = listener};
  epoll_ctl(poller, EPOLL_CTL_ADD, listener, &event);
  // A periodic 20 ms timer: the kernel keeps the schedule, so there is no drift to correct.
  int ticker = timerfd_create(CLOCK_MONOTONIC, 0);
  struct itimerspec every_20_ms = {{0, 20000000}, {0, 20000000}};
  timerfd_settime(ticker, 0, &every_20_ms, NULL);
  event.data.fd = ticker;
  epoll_ctl(poller, EPOLL_CTL_ADD, ticker, &event);

  static uint8_t silence[HEADER_BYTES + FRAME_BYTES];
  put_header(silence, TYPE_AUDIO, FRAME_BYTES);
  static uint8_t chunk[65536];
  struct epoll_event ready[MAX_EVENTS];
  for (;;) {
    int count = epoll_wait(poller, ready, MAX_EVENTS, -1);
    for (int i = 0; i < count; i++) {
      int fd = ready[i].data.fd;
      if (fd == listener) {
        int client = accept4(listener, NULL, NULL, SOCK_NONBLOCK);
        if (client < 0 || client >= MAX_FDS) {
          if (client >= 0) close(client);
          continue;
        }
        setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        connections[client] = calloc(1, sizeof(struct connection));
        event.data.fd = client;
        epoll_ctl(poller, EPOLL_CTL_ADD, client, &event);
      } else if (fd == ticker) {
        uint64_t expirations;
        if (read(ticker, &expirations, sizeof expirations) < 0) continue;
        for (int u = 0; u < user_count; u++) {
          // A failed write is ignored: a full send buffer (EAGAIN) just misses this frame, as in
          // the real server, and a broken connection is closed when its read() fails.
          ssize_t ignored = write(users[u], silence, sizeof silence);
          (void)ignored;
        }
      } else {
        ssize_t got = read(fd, chunk, sizeof chunk);
        if (got > 0) parse(fd, chunk, (size_t)got);
        else if (got == 0 || errno != EAGAIN) forget(fd);
      }
    }
  }
}
