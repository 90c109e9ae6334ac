using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace Offload.Workspace;

/// <summary>
/// A new worktree's files, branch and index written without a git process per task, for the plain repositories most
/// are: the commit's tree and blobs are read once (<c>git ls-tree</c>, <c>git cat-file --batch</c>) and shared by the
/// tasks started from it together; each task then writes the files, the index (with the stat data git records) and
/// its branch's ref and reflog entry, as <c>git checkout -b</c> would. Anything that makes git's checkout do more —
/// attributes (line endings, filters, LFS), submodules, a sparse or split index, another index version, another
/// object format, symlinks off, a large tree — leaves the checkout to git.
/// </summary>
public sealed partial class GitWorkspace
{
    private const int MaxDirectFiles = 5_000;
    private const long MaxDirectBytes = 16L << 20;
    private static readonly TimeSpan SourceKeptIdle = TimeSpan.FromSeconds(10);

    private static readonly ConcurrentDictionary<string, SourceSlot> Sources = new(StringComparer.Ordinal);

    /// <summary>
    /// Writing files blocks its thread: as many writers as CPUs, so a hundred tasks starting together leave the thread
    /// pool free for the API, the model streams and the store.
    /// </summary>
    private static readonly SemaphoreSlim FileWriters = new(Environment.ProcessorCount);

    /// <summary>A commit's files, ready to be written; with the identity and reflog setting of the repository's config.</summary>
    private sealed record CheckoutSource(IReadOnlyList<SourceFile> Files, string Identity, bool LogRefUpdates);

    private sealed record SourceFile(IndexEntry Entry, byte[] Content);

    /// <summary>A source being read or read, and when a task last asked for it (it is forgotten once idle).</summary>
    private sealed class SourceSlot(Task<CheckoutSource?> source)
    {
        public Task<CheckoutSource?> Source { get; } = source;

        public long LastUse = Environment.TickCount64;
    }

    /// <summary>Whether a new worktree at <paramref name="commit"/> is written by Offload rather than by <c>git checkout</c>.</summary>
    internal static async Task<bool> WritesWorktreeItselfAsync(string repoRoot, string commit, CancellationToken cancellationToken = default) =>
        await CheckoutSourceAsync(repoRoot, await GitDirsAsync(repoRoot, cancellationToken), commit, cancellationToken) is not null;

    /// <summary>
    /// What to write for a worktree at <paramref name="commit"/>, or null when git must do the checkout. Kept while
    /// tasks keep starting from the commit (a config change made in the seconds before is seen after that).
    /// </summary>
    private static async Task<CheckoutSource?> CheckoutSourceAsync(string repoRoot, GitDirs dirs, string commit, CancellationToken cancellationToken)
    {
        if (!GitIndex.Supported || commit.Length != 40 || !commit.All(char.IsAsciiHexDigitLower))
        {
            return null;
        }

        var key = dirs.CommonDir + "\n" + commit;
        var slot = Sources.GetOrAdd(key, k =>
        {
            var made = new SourceSlot(ReadSourceAsync(repoRoot, dirs, commit));
            _ = ForgetWhenIdleAsync(k, made);
            return made;
        });
        Volatile.Write(ref slot.LastUse, Environment.TickCount64);
        return await slot.Source.WaitAsync(cancellationToken);
    }

    private static async Task ForgetWhenIdleAsync(string key, SourceSlot slot)
    {
        do
        {
            await Task.Delay(SourceKeptIdle);
        }
        while (Environment.TickCount64 - Volatile.Read(ref slot.LastUse) < SourceKeptIdle.TotalMilliseconds);

        Sources.TryRemove(new KeyValuePair<string, SourceSlot>(key, slot));
    }

    private static async Task<CheckoutSource?> ReadSourceAsync(string repoRoot, GitDirs dirs, string commit)
    {
        var config = await Git.RunAsync(repoRoot, ["config", "-z", "--get-regexp", ConfigThatMatters]);
        if (config.ExitCode is not (0 or 1) || AttributesOutsideTheTree(dirs))
        {
            return null;
        }

        Dictionary<string, string> settings = new(StringComparer.Ordinal);
        foreach (var item in Git.SplitZ(config.Stdout))
        {
            var pair = item.Split('\n', 2);
            settings[pair[0]] = pair.Length > 1 ? pair[1] : "true"; // the last one wins, as in git (system, global, local)
        }

        if (settings.Keys.Any(name => !name.StartsWith("user.", StringComparison.Ordinal) && !Harmless(name, settings[name])))
        {
            return null;
        }

        var listing = await Git.RunBytesAsync(repoRoot, ["ls-tree", "-r", "-z", "-l", "--full-tree", commit]);
        if (listing.ExitCode != 0 || ParseTree(listing.Stdout) is not { } tree)
        {
            return null;
        }

        var blobs = tree.Select(t => t.Id).Distinct(StringComparer.Ordinal).ToList();
        var contents = blobs.Count == 0 ? new Dictionary<string, byte[]>()
            : await ReadBlobsAsync(repoRoot, blobs);
        if (contents is null)
        {
            return null;
        }

        List<SourceFile> files = [];
        foreach (var (mode, id, path) in tree)
        {
            if (mode == GitIndex.SymlinkMode && (!System.Text.Unicode.Utf8.IsValid(contents[id]) || contents[id].Contains((byte)0)))
            {
                return null;
            }

            files.Add(new SourceFile(new IndexEntry(Encoding.UTF8.GetString(path), path, mode, Convert.FromHexString(id)), contents[id]));
        }

        var name = settings.GetValueOrDefault("user.name") ?? "Offload";
        var email = settings.GetValueOrDefault("user.email") ?? "offload@localhost";
        var log = settings.GetValueOrDefault("core.logallrefupdates") is not ("false" or "no" or "off" or "0");
        return new CheckoutSource(files, $"{name} <{email}>", log);
    }

    /// <summary>Config that changes what a checkout writes or how the index looks, and the identity for the reflog.</summary>
    private const string ConfigThatMatters =
        @"^(core\.(autocrlf|eol|symlinks|ignorecase|precomposeunicode|splitindex|fsmonitor|attributesfile|sparsecheckout|sparsecheckoutcone|checkroundtripencoding|logallrefupdates)|index\..*|feature\..*|filter\..*|extensions\..*|user\.(name|email))$";

    /// <summary>A setting found by <see cref="ConfigThatMatters"/> that leaves a plain checkout as it is.</summary>
    private static bool Harmless(string name, string value) => name switch
    {
        "core.autocrlf" or "core.ignorecase" or "core.precomposeunicode" or "core.splitindex" or "core.fsmonitor"
            or "core.sparsecheckout" or "core.sparsecheckoutcone" or "index.sparse" => value is "false" or "no" or "off" or "0",
        "core.symlinks" => value is "true" or "yes" or "on" or "1",
        "core.logallrefupdates" or "index.threads" or "index.recordendofindexentries" or "index.recordoffsettable" => true,
        "index.version" => value == "2",
        _ => false,
    };

    /// <summary>Attribute files git reads besides the tree's own (any of them may set line endings or filters).</summary>
    private static bool AttributesOutsideTheTree(GitDirs dirs)
    {
        var home = Environment.GetEnvironmentVariable("HOME");
        var xdg = Environment.GetEnvironmentVariable("XDG_CONFIG_HOME") is { Length: > 0 } set ? set
            : home is { Length: > 0 } ? Path.Combine(home, ".config") : null;
        return File.Exists(Path.Combine(dirs.CommonDir, "info", "attributes"))
            || (xdg is not null && File.Exists(Path.Combine(xdg, "git", "attributes")))
            || File.Exists("/etc/gitattributes");
    }

    /// <summary>
    /// <c>ls-tree -r -z -l</c>: "&lt;mode&gt; &lt;type&gt; &lt;id&gt; &lt;size&gt;\t&lt;path&gt;\0" per file. Null when git
    /// must do the checkout: a submodule, a <c>.gitattributes</c>, an unusual mode, a path that is not UTF-8 or that git
    /// would refuse to write (<c>..</c>, <c>.git</c>), too much.
    /// </summary>
    private static List<(int Mode, string Id, byte[] Path)>? ParseTree(byte[] listing)
    {
        List<(int, string, byte[])> files = [];
        long bytes = 0;
        var rest = listing.AsSpan();
        while (rest.Length > 0)
        {
            var end = rest.IndexOf((byte)0);
            var line = end < 0 ? rest : rest[..end];
            rest = end < 0 ? [] : rest[(end + 1)..];
            var tab = line.IndexOf((byte)'\t');
            if (tab < 0)
            {
                return null;
            }

            var fields = Encoding.ASCII.GetString(line[..tab]).Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var path = line[(tab + 1)..].ToArray();
            var mode = fields.Length == 4 ? fields[0] switch
            {
                "100644" or "100664" => GitIndex.RegularMode,
                "100755" => GitIndex.ExecutableMode,
                "120000" => GitIndex.SymlinkMode,
                _ => 0, // a submodule (160000) or something odder
            } : 0;
            if (mode == 0 || fields[1] != "blob" || !long.TryParse(fields[3], NumberStyles.None, CultureInfo.InvariantCulture, out var size)
                || !System.Text.Unicode.Utf8.IsValid(path) || !Plain(Encoding.UTF8.GetString(path)) || (bytes += size) > MaxDirectBytes || files.Count >= MaxDirectFiles)
            {
                return null;
            }

            files.Add((mode, fields[2], path));
        }

        return files;

        // git's checkout refuses or treats specially: ".", "..", ".git" in any spelling, attributes, submodules' list
        static bool Plain(string path) => !path.Contains('\\') && path.Split('/').All(part =>
            part.Length > 0 && part is not ("." or "..")
            && !part.TrimEnd(' ', '.').Equals(".git", StringComparison.OrdinalIgnoreCase)
            && !part.Equals("git~1", StringComparison.OrdinalIgnoreCase)
            && part is not (".gitattributes" or ".gitmodules"));
    }

    /// <summary>The blobs' contents through one <c>cat-file --batch</c>: "&lt;id&gt; blob &lt;size&gt;\n&lt;content&gt;\n" each.</summary>
    private static async Task<Dictionary<string, byte[]>?> ReadBlobsAsync(string repoRoot, List<string> ids)
    {
        var read = await Git.RunBytesAsync(repoRoot, ["cat-file", "--batch"], string.Join('\n', ids) + "\n");
        if (read.ExitCode != 0)
        {
            return null;
        }

        Dictionary<string, byte[]> contents = new(StringComparer.Ordinal);
        var output = read.Stdout;
        var at = 0;
        foreach (var id in ids)
        {
            var newline = Array.IndexOf(output, (byte)'\n', at);
            if (newline < 0)
            {
                return null;
            }

            var header = Encoding.ASCII.GetString(output, at, newline - at).Split(' ');
            if (header.Length != 3 || header[0] != id || header[1] != "blob" || !int.TryParse(header[2], NumberStyles.None, CultureInfo.InvariantCulture, out var size)
                || newline + 1 + size + 1 > output.Length)
            {
                return null;
            }

            contents[id] = output.AsSpan(newline + 1, size).ToArray();
            at = newline + 1 + size + 1;
        }

        return contents;
    }

    /// <summary>Writes the files into <paramref name="root"/> (modes subject to the umask, as git's are) and the worktree's index.</summary>
    private static async Task WriteFilesAsync(string root, string metadata, CheckoutSource source, CancellationToken cancellationToken)
    {
        await FileWriters.WaitAsync(cancellationToken);
        try
        {
            WriteFiles(root, metadata, source);
        }
        finally
        {
            FileWriters.Release();
        }
    }

    private static void WriteFiles(string root, string metadata, CheckoutSource source)
    {
        HashSet<string> made = new(StringComparer.Ordinal) { root };
        foreach (var file in source.Files)
        {
            var path = Path.Join(root, file.Entry.Path);
            var folder = Path.GetDirectoryName(path)!;
            if (made.Add(folder))
            {
                Directory.CreateDirectory(folder);
            }

            if (file.Entry.Mode == GitIndex.SymlinkMode)
            {
                File.CreateSymbolicLink(path, Encoding.UTF8.GetString(file.Content));
                continue;
            }

            using var stream = new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                UnixCreateMode = file.Entry.Mode == GitIndex.ExecutableMode
                    ? (UnixFileMode)0b111_111_111 // 0777 & ~umask
                    : (UnixFileMode)0b110_110_110, // 0666 & ~umask
            });
            stream.Write(file.Content);
        }

        GitIndex.Write(Path.Combine(metadata, "index"), root, [.. source.Files.Select(f => f.Entry)]);
    }

    /// <summary>
    /// Creates <c>refs/heads/&lt;branch&gt;</c> at <paramref name="commit"/> as git does: under its <c>.lock</c> file,
    /// refusing a branch that exists (loose or packed), with a reflog entry when the repository keeps them. False
    /// when the branch exists.
    /// </summary>
    private static bool CreateBranchRef(GitDirs dirs, string branch, string commit, CheckoutSource source)
    {
        var name = "refs/heads/" + branch;
        var path = Path.Combine(dirs.CommonDir, name);
        var lockPath = path + ".lock";
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            using (var stream = new FileStream(lockPath, FileMode.CreateNew, FileAccess.Write))
            {
                stream.Write(Encoding.ASCII.GetBytes(commit + "\n"));
            }
        }
        catch (IOException e)
        {
            throw new WorkspaceException(
                WorkspaceErrors.GitFailed,
                $"could not create branch {branch}: {e.Message}. If another git command is running, wait for it; "
                + $"otherwise remove {lockPath} if it is left over.",
                innerException: e);
        }

        try
        {
            if (File.Exists(path) || Directory.Exists(path) || IsPacked(dirs.CommonDir, name))
            {
                File.Delete(lockPath);
                return false;
            }

            if (source.LogRefUpdates)
            {
                var log = Path.Combine(dirs.CommonDir, "logs", name);
                Directory.CreateDirectory(Path.GetDirectoryName(log)!);
                var now = DateTimeOffset.Now;
                var zone = now.Offset < TimeSpan.Zero ? "-" : "+";
                File.AppendAllText(log,
                    $"{new string('0', 40)} {commit} {source.Identity} {now.ToUnixTimeSeconds()} {zone}{now.Offset:hhmm}\tbranch: Created from {commit}\n");
            }

            File.Move(lockPath, path);
            return true;
        }
        catch
        {
            File.Delete(lockPath);
            throw;
        }
    }

    private static bool IsPacked(string commonDir, string refName)
    {
        var packed = Path.Combine(commonDir, "packed-refs");
        return File.Exists(packed) && File.ReadLines(packed).Any(line => line.Length > 41 && line[40] == ' ' && line.AsSpan(41).SequenceEqual(refName));
    }
}
