using System.Buffers.Binary;
using Isthmus.Core;

namespace Isthmus.Interpose;

/// <summary>How <c>isthmus run</c> puts a program on the overlay.</summary>
public enum InterposeMode
{
    /// <summary>LD_PRELOAD shim; the program replaces <c>isthmus</c> (execve).</summary>
    Preload,

    /// <summary>seccomp user notification; <c>isthmus</c> stays as the program's supervisor.</summary>
    Seccomp,
}

/// <summary>What the ELF header of a program says about how it can be interposed.</summary>
public sealed record ProgramKind(bool IsElf, bool Is64Bit, bool IsStatic, bool IsSetId, ushort Machine, bool IsGo = false)
{
    public const ushort MachineX8664 = 62;
    public const ushort MachineAarch64 = 183;

    /// <summary>
    /// The <c>--mode auto</c> rule: setuid/setgid programs are refused (the loader ignores LD_PRELOAD for them,
    /// and the seccomp launcher's NO_NEW_PRIVS would run them without their privileges); a statically linked
    /// ELF (no PT_INTERP: static and static-pie) and a Go program, even a dynamically linked one (Go's runtime
    /// makes its socket system calls itself, not through libc, so LD_PRELOAD never sees them; found by its
    /// "Go" build-id note) get seccomp; everything else (dynamic ELF, scripts) preload.
    /// </summary>
    public InterposeMode ChooseAuto(string path)
    {
        if (IsSetId)
        {
            throw new UserException($"{path} is setuid/setgid: it cannot be interposed (the loader ignores LD_PRELOAD for it, and seccomp mode would drop its privileges); run it without isthmus, or a copy without the set-id bit", ProgramLauncher.ExitCannotRun);
        }

        return IsElf && (IsStatic || IsGo) ? InterposeMode.Seccomp : InterposeMode.Preload;
    }

    /// <summary>Refuses what seccomp mode cannot supervise (a foreign or 32-bit ELF, set-id programs).</summary>
    public void EnsureSeccompCan(string path)
    {
        if (IsSetId)
        {
            throw new UserException($"{path} is setuid/setgid: seccomp mode sets NO_NEW_PRIVS, so it would run without its privileges; run it without isthmus", ProgramLauncher.ExitCannotRun);
        }

        var native = System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.Arm64 ? MachineAarch64 : MachineX8664;
        if (IsElf && (!Is64Bit || Machine != native))
        {
            throw new UserException($"{path} is not a 64-bit program of this machine's architecture: seccomp mode supervises native 64-bit programs only (a 32-bit program could bypass the filter)", ProgramLauncher.ExitCannotRun);
        }
    }

    /// <summary>Whether the note segment holds Go's build id (owner "Go", type 4, NT_GO_BUILDID), which the Go linker writes into every ELF it makes.</summary>
    private static bool HasGoNote(Stream stream, long offset, long size)
    {
        Span<byte> notes = stackalloc byte[1024]; // the build-id note is about 100 bytes; larger note segments are read in part
        stream.Position = offset;
        var length = stream.ReadAtLeast(notes[..(int)Math.Clamp(size, 0, notes.Length)], (int)Math.Clamp(size, 0, notes.Length), throwOnEndOfStream: false);
        for (var at = 0; at + 12 <= length;)
        {
            var nameSize = BinaryPrimitives.ReadUInt32LittleEndian(notes[at..]);
            var descSize = BinaryPrimitives.ReadUInt32LittleEndian(notes[(at + 4)..]);
            var type = BinaryPrimitives.ReadUInt32LittleEndian(notes[(at + 8)..]);
            if (nameSize > 256 || descSize > 4096)
            {
                return false;
            }

            // The Go linker writes the owner as "Go\0\0" (namesz 4); "Go\0" (3) is what the ELF rules would give.
            if (type == 4 && nameSize is 3 or 4 && at + 15 <= length && notes.Slice(at + 12, 3).SequenceEqual("Go\0"u8))
            {
                return true;
            }

            at += 12 + (int)((nameSize + 3) & ~3u) + (int)((descSize + 3) & ~3u);
        }

        return false;
    }

    public static ProgramKind Inspect(string path)
    {
        var info = new FileInfo(path);
        var setId = (info.UnixFileMode & (UnixFileMode.SetUser | UnixFileMode.SetGroup)) != 0;
        try
        {
            using var stream = File.OpenRead(path);
            Span<byte> header = stackalloc byte[64];
            if (stream.ReadAtLeast(header, 64, throwOnEndOfStream: false) < 64 || header[0] != 0x7F || !header[1..4].SequenceEqual("ELF"u8))
            {
                return new ProgramKind(false, false, false, setId, 0);
            }

            var is64 = header[4] == 2;
            var little = header[5] == 1;
            if (!is64 || !little)
            {
                return new ProgramKind(true, is64, false, setId, little ? BinaryPrimitives.ReadUInt16LittleEndian(header[18..]) : (ushort)0);
            }

            var machine = BinaryPrimitives.ReadUInt16LittleEndian(header[18..]);
            var phoff = (long)BinaryPrimitives.ReadUInt64LittleEndian(header[32..]);
            var phentsize = BinaryPrimitives.ReadUInt16LittleEndian(header[54..]);
            var phnum = BinaryPrimitives.ReadUInt16LittleEndian(header[56..]);
            var hasInterp = false;
            var isGo = false;
            Span<byte> ph = stackalloc byte[40];
            for (var i = 0; i < phnum && i < 4096 && phentsize >= 40; i++)
            {
                stream.Position = phoff + ((long)i * phentsize);
                if (stream.ReadAtLeast(ph, 40, throwOnEndOfStream: false) < 40)
                {
                    break;
                }

                switch (BinaryPrimitives.ReadUInt32LittleEndian(ph))
                {
                    case 3: // PT_INTERP
                        hasInterp = true;
                        break;
                    case 4: // PT_NOTE: p_offset at 8, p_filesz at 32
                        isGo |= HasGoNote(stream, (long)BinaryPrimitives.ReadUInt64LittleEndian(ph[8..]), (long)BinaryPrimitives.ReadUInt64LittleEndian(ph[32..]));
                        break;
                }
            }

            return new ProgramKind(true, true, !hasInterp, setId, machine, isGo);
        }
        catch (IOException)
        {
            return new ProgramKind(false, false, false, setId, 0);
        }
        catch (UnauthorizedAccessException)
        {
            return new ProgramKind(false, false, false, setId, 0);
        }
    }
}
