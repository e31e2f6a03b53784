// IiodServer: libiio's network protocol (the text protocol of libiio 0.24's iiod, the one its
// "ip:" backend speaks) over TCP on 127.0.0.1, serving the IIO devices of a context, so that
// libiio's unmodified tools (iio_info, iio_attr, iio_readdev, iio_writedev) and programs reach
// zbuf's emulated ADC and DAC as they reach a board running iiod: `iio_info -u ip:127.0.0.1:PORT`.
//
// It is an application of the context: it reaches the devices only through uapi::FdCalls, with
// paths and fds, as iiod does on a board (open and read/write the sysfs attribute files; open
// /dev/iio:deviceN, IIO_BUFFER_GET_FD_IOCTL, write the scan elements' _en, buffer0/length and
// buffer0/enable, read(2) or write(2) the buffer fd: the fileio path). The device, channel and
// attribute model is generated from what the namespace lists under
// /sys/bus/iio/devices/iio:deviceN/ (the listing is IiodConfig::listing, the readdir of a real
// system; Context::nodes() for the embedded context), read anew for each connection and each PRINT:
//   name, label          the device's name and label (not attributes, as libiio's local backend)
//   scan_elements/{in,out}_<chan>_{en,index,type}   a scan element (channel <chan>, its index,
//                        its format); {in,out}_<chan>_<attr> beside them: channel attributes
//   buffer/<attr>        buffer attributes (length, enable, watermark are the server's: hidden)
//   /sys/kernel/debug/iio/iio:deviceN/<attr>          debug attributes
//   other files          device attributes (bufferK/ and dev, uevent are left out)
//
// The protocol subset (requests are lines, "\r\n" or "\n"; each reply is "%i\n", negative errno
// on error, then the data the command has):
//   VERSION                  "0.24.zbuf   \n" (major.minor.git tag, as iiod)
//   PRINT                    the length, then the context XML (libiio's xml backend format)
//   ZPRINT                   -EINVAL (no zstd: the client falls back to PRINT, as with iiod)
//   TIMEOUT <ms>             0 (bounds the wait for samples in READBUF; 0: no bound)
//   OPEN <dev> <samples> <mask> [CYCLIC]   enables the device's buffer 0 with <samples> frames
//   CLOSE <dev>
//   READBUF <dev> <bytes>    "<len>\n<mask>\n" then <len> bytes of samples of the mask's
//                            channels (demultiplexed here from the hardware's frames), as often
//                            as needed; "0\n" at the end if the request was not whole samples
//   WRITEBUF <dev> <bytes>   "0\n", then the client sends <bytes> of samples of its mask's
//                            channels; they are multiplexed into hardware frames (channels
//                            left out: 0) and written to the buffer fd; then "<written>\n"
//                            (whole samples; a trailing partial sample is read and dropped)
//   READ <dev> [DEBUG|BUFFER|INPUT <chn>|OUTPUT <chn>] [<attr>]   the length, the value, "\n"
//                            (no <attr>: every attribute, libiio's length-prefixed block)
//   WRITE <dev> [DEBUG|BUFFER|INPUT <chn>|OUTPUT <chn>] <attr> <bytes>   then <bytes> of value
//   GETTRIG <dev>, SETTRIG <dev> [<trig>]   trigger/current_trigger (-ENOENT without one)
//   SET <dev> BUFFERS_COUNT <n>   0 (recorded; the fileio ring's size is the device's)
//   HELP, EXIT/QUIT
// Unknown commands and malformed lines are answered -EINVAL (as iiod's parser); an unknown
// device -ENODEV, an unknown channel -ENXIO; READBUF or WRITEBUF without OPEN -EBADF, READBUF
// of an output device or WRITEBUF of an input one -EPERM (the buffer fd's); WRITEBUF's errors
// come before its data (the client sends none after a negative reply). Not served: CYCLIC
// (-EINVAL on an input device, -ENOSYS on an output one), writing every attribute at once
// (-ENOSYS), more than one OPEN of a device at a time (-EBUSY, the character device's).
//
// Limits (nothing from the wire sizes an allocation unchecked): lines of at most
// IiodConfig::maxLine bytes (longer: -EINVAL and the connection closes); WRITE values of at
// most 4096 bytes (a sysfs page, the client's NUL included; longer: -EFBIG and the connection
// closes, the value unread); an OPEN's buffer of at most maxBufferBytes (-ENOMEM); READBUF
// reads and sends, and WRITEBUF receives and writes, at most 1 MiB of frames at a time,
// whatever the request's length (WRITEBUF: at most 2^32 - 1 bytes, iiod's); maxConnections at a
// time (more are closed at once); a connection idle (no request) for idleTimeout is closed.
//
// Thread-safety: thread-safe; one thread accepts, one serves each connection. stop() (and the
// destructor) stop accepting, shut every connection down, disable the buffers they opened and
// join their threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "zbuf/base/mutex.h"
#include "zbuf/base/result.h"
#include "zbuf/base/unique_fd.h"
#include "zbuf/uapi/fd_calls.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::daemon {

struct IiodConfig {
  std::uint16_t port = 0;  // on 127.0.0.1; 0: any free port (IiodServer::port() says which)
  // Every path of the namespace (the readdir of /sys/bus/iio/devices and below): required.
  std::function<std::vector<std::string>()> listing;
  std::size_t maxConnections = 16;
  std::chrono::milliseconds idleTimeout{std::chrono::minutes(5)};
  std::size_t maxLine = 4096;                          // bytes of a request line, "\n" included
  std::size_t maxBufferBytes = std::size_t{64} << 20;  // an OPEN's samples * frame size
};

class IiodServer {
 public:
  // Binds 127.0.0.1:port and listens, then accepts on its own thread. `calls` must outlive the
  // server. EINVAL without a listing; bind's errors (EADDRINUSE).
  [[nodiscard]] static Result<std::unique_ptr<IiodServer>> create(uapi::FdCalls& calls,
                                                                  IiodConfig config);
  ~IiodServer();
  IiodServer(const IiodServer&) = delete;
  IiodServer& operator=(const IiodServer&) = delete;

  void stop();
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  // Connections open now, and accepted since the start.
  [[nodiscard]] std::size_t clients() const;
  [[nodiscard]] std::size_t accepted() const noexcept { return accepted_.load(); }

  struct Private;
  IiodServer(Private key, uapi::FdCalls& calls, IiodConfig config, UniqueFd listening,
             std::uint16_t port);

 private:
  struct Connection {
    UniqueFd socket;
    std::thread thread;
    std::atomic<bool> done{false};
  };
  void acceptLoop();
  void serve(Connection& c);
  void reapFinished() ZBUF_REQUIRES(mutex_);
  // The enable files of the buffers the connections have on: stop() turns them off, which ends
  // a read(2) waiting for samples. false: the server is stopping (nothing is added).
  bool trackBuffer(const std::string& enablePath, bool on);

  uapi::FdCalls& calls_;
  IiodConfig config_;
  UniqueFd listening_;
  UniqueFd stopEvent_;
  std::uint16_t port_;
  std::atomic<std::size_t> accepted_{0};
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  mutable Mutex mutex_;
  std::list<Connection> connections_ ZBUF_GUARDED_BY(mutex_);
  bool stopped_ ZBUF_GUARDED_BY(mutex_) = false;
  Mutex buffersMutex_;
  std::multiset<std::string> buffersOn_ ZBUF_GUARDED_BY(buffersMutex_);
  bool buffersStopped_ ZBUF_GUARDED_BY(buffersMutex_) = false;
};

}  // namespace zbuf::daemon
#pragma GCC visibility pop
