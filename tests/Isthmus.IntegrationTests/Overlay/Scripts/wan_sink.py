# Accepts connections on VIP:PORT; for each, reads to EOF and answers "GOT <sha256> <bytes>", then closes.
# Prints LISTENING once, and the same GOT line per connection.
import hashlib, socket, sys, threading

# print() writes the text and the newline separately; one lock keeps lines from several threads whole.
_out = threading.Lock()

def say(line):
    with _out:
        say(line)

def serve(conn):
    h, n = hashlib.sha256(), 0
    while True:
        data = conn.recv(1 << 20)
        if not data:
            break
        h.update(data)
        n += len(data)
    line = f"GOT {h.hexdigest()} {n}"
    conn.sendall((line + "\n").encode())
    conn.close()
    print(line, flush=True)

listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((sys.argv[1], int(sys.argv[2])))
listener.listen(2048)
print("LISTENING", flush=True)
while True:
    c, _ = listener.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
