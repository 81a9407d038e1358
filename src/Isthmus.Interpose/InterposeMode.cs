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
public sealed record ProgramKind(bool IsElf, bool Is64Bit, bool IsStatic, bool IsSetId, ushort Machine)
{
    public const ushort MachineX8664 = 62;
    public const ushort MachineAarch64 = 183;

    /// <summary>
    /// The <c>--mode auto</c> rule: setuid/setgid programs are refused (the loader ignores LD_PRELOAD for them,
    /// and the seccomp launcher's NO_NEW_PRIVS would run them without their privileges); a statically linked
    /// ELF (no PT_INTERP: static and static-pie) gets seccomp; everything else (dynamic ELF, scripts) preload.
    /// </summary>
    public InterposeMode ChooseAuto(string path)
    {
        if (IsSetId)
        {
            throw new UserException($"{path} is setuid/setgid: it cannot be interposed (the loader ignores LD_PRELOAD for it, and seccomp mode would drop its privileges); run it without isthmus, or a copy without the set-id bit", ProgramLauncher.ExitCannotRun);
        }

        return IsElf && IsStatic ? InterposeMode.Seccomp : InterposeMode.Preload;
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
            Span<byte> ph = stackalloc byte[4];
            for (var i = 0; i < phnum && i < 4096 && phentsize >= 4; i++)
            {
                stream.Position = phoff + ((long)i * phentsize);
                if (stream.ReadAtLeast(ph, 4, throwOnEndOfStream: false) < 4)
                {
                    break;
                }

                if (BinaryPrimitives.ReadUInt32LittleEndian(ph) == 3) // PT_INTERP
                {
                    hasInterp = true;
                    break;
                }
            }

            return new ProgramKind(true, true, !hasInterp, setId, machine);
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
