# Echo server on VIP:PORT (one thread per connection); prints LISTENING, "RESET" when a peer resets and
# "CLOSED" when a peer closes.
import socket, sys, threading

# print() writes the text and the newline separately, so lines from several threads could interleave
# ("RESETRESET\n\n"); one lock keeps every line whole.
out = threading.Lock()

def say(line):
    with out:
        print(line, flush=True)

def serve(conn):
    try:
        while True:
            d = conn.recv(65536)
            if not d:
                say("CLOSED")
                break
            conn.sendall(d)
    except ConnectionResetError:
        say("RESET")
    finally:
        conn.close()

listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((sys.argv[1], int(sys.argv[2])))
listener.listen(4096)
print("LISTENING", flush=True)
while True:
    c, _ = listener.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
