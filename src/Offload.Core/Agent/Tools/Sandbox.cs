using System.Diagnostics;
using Offload.Config;
using Offload.Workspace;

namespace Offload.Agent.Tools;

/// <summary>
/// Bubblewrap for the builtin agent's shell commands: the whole file system read-only, the
/// task's worktree and what a commit on its branch writes in the git dir writable, a private
/// <c>/tmp</c>, Offload's own files and the user's runtime sockets hidden, no network unless
/// allowed, its own pid namespace so killing bwrap kills everything inside. docs/sandbox.md
/// explains each choice.
/// </summary>
public static class Sandbox
{
    /// <summary>Set to another bwrap (or to a path that does not exist, to run without one).</summary>
    public const string BwrapVariable = "OFFLOAD_BWRAP";

    public const string InstallHint = "sudo apt-get install bubblewrap";

    private static readonly Lazy<SandboxProbe> Probed = new(() => Probe(Environment.GetEnvironmentVariable));

    /// <summary>The bwrap executable, when one is installed (it may still fail to work: see <see cref="IsAvailable"/>).</summary>
    public static string? BwrapPath => Probed.Value.Path;

    /// <summary>Whether bwrap exists and works here (checked once per process, with the flags commands run with).</summary>
    public static bool IsAvailable => Probed.Value.Works;

    /// <summary>Why <see cref="IsAvailable"/> is false, in words for the user; null when it is true.</summary>
    public static string? Problem => Probed.Value.Problem;

    /// <summary>Checks a bwrap afresh (for <c>offload doctor</c>, which runs in its own process anyway).</summary>
    public static SandboxProbe Probe(Func<string, string?> getEnv)
    {
        var path = FindBwrap(getEnv);
        if (path is null)
        {
            return new SandboxProbe(null, false, null, $"bubblewrap (bwrap) is not installed; shell commands run without a sandbox. Install it: {InstallHint}");
        }

        var probe = new ProcessStartInfo(path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in (string[])["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
                     "--unshare-net", "--unshare-pid", "--die-with-parent", "--new-session", "--", "/bin/true"])
        {
            probe.ArgumentList.Add(argument);
        }

        try
        {
            using var process = Process.Start(probe)!;
            var stderr = process.StandardError.ReadToEndAsync();
            var version = VersionOf(path);
            if (!process.WaitForExit(TimeSpan.FromSeconds(10)))
            {
                process.Kill(entireProcessTree: true);
                return new SandboxProbe(path, false, version, $"{path} did not finish a trial run within 10 s; shell commands run without a sandbox.");
            }

            return process.ExitCode == 0
                ? new SandboxProbe(path, true, version, null)
                : new SandboxProbe(path, false, version,
                    $"{path} is installed but cannot create a sandbox here ({stderr.Result.Trim()}); shell commands run without one. "
                    + "Unprivileged user namespaces may be disabled (sysctl kernel.unprivileged_userns_clone, or AppArmor's kernel.apparmor_restrict_unprivileged_userns).");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return new SandboxProbe(path, false, null, $"{path} cannot be run ({e.Message}); shell commands run without a sandbox. Install it: {InstallHint}");
        }
    }

    /// <summary>
    /// The sandbox for one task's commands, or null when bwrap is not available. Finds what
    /// <c>git commit</c> in the worktree writes: the worktree's own git dir, the folder of its
    /// branch's ref (and reflog), and objects, which go to a quarantine (<see cref="SandboxObjects"/>);
    /// the rest of the repository's git dir stays read-only, so the agent cannot delete history,
    /// move other branches, plant hooks or change the config.
    /// </summary>
    public static async Task<SandboxPolicy?> ForTaskAsync(string worktree, string spillDir, SandboxSettings settings, CancellationToken cancellationToken = default)
    {
        if (!IsAvailable)
        {
            return null;
        }

        var git = ReadGitFiles(worktree) ?? await AskGitAsync(worktree, cancellationToken);
        string? common = null;
        string? privateObjects = null;
        var writable = new List<string>();
        if (git is { } found)
        {
            common = found.CommonDir;
            writable.Add(found.GitDir);
            privateObjects = SandboxObjects.PrivateDir(found.GitDir);
            Directory.CreateDirectory(privateObjects);
            if (found.BranchRef is { } branchRef && branchRef.StartsWith("refs/heads/", StringComparison.Ordinal))
            {
                foreach (var refDir in (string[])[Path.GetDirectoryName(Path.Combine(common, branchRef))!, Path.GetDirectoryName(Path.Combine(common, "logs", branchRef))!])
                {
                    Directory.CreateDirectory(refDir);
                    writable.Add(refDir);
                }
            }
        }

        var paths = OffloadPaths.FromEnvironment();
        string[] hidden = [.. new[] { Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR"), paths.RuntimeDir, paths.ConfigDir, paths.DataDir }
            .OfType<string>().Where(p => p.Length > 0 && Path.IsPathRooted(p)).Distinct()];
        var policy = new SandboxPolicy(Path.GetFullPath(worktree), common, [.. writable.Distinct()], privateObjects, git?.ObjectFormat ?? "sha1",
            spillDir, settings.Network, hidden);
        await SandboxObjects.AdoptAsync(policy, cancellationToken); // what a command left when the daemon died mid-run
        return policy;
    }

    /// <summary>A worktree's git directory, common directory, object format and branch (<c>refs/heads/…</c>, or null when detached).</summary>
    internal sealed record GitDirs(string GitDir, string CommonDir, string ObjectFormat, string? BranchRef);

    /// <summary>
    /// What <see cref="AskGitAsync"/> says, read from the files git keeps for a linked worktree (<c>.git</c> →
    /// <c>gitdir:</c>, its <c>commondir</c> and <c>HEAD</c>) without starting git: two git processes less for every run
    /// (≈ 8 ms of CPU each here, most of a task's start when a hundred start at once; docs/benchmarks.md). Null when
    /// anything is not the plain case (a main checkout, another object format, a file that reads otherwise): then git is asked.
    /// </summary>
    internal static GitDirs? ReadGitFiles(string worktree)
    {
        try
        {
            var dotGit = Path.Combine(worktree, ".git");
            if (!File.Exists(dotGit) || File.ReadAllText(dotGit).Trim() is not { } pointer || !pointer.StartsWith("gitdir: ", StringComparison.Ordinal))
            {
                return null;
            }

            var gitDir = Path.GetFullPath(pointer["gitdir: ".Length..].Trim(), Path.GetFullPath(worktree));
            var commonFile = Path.Combine(gitDir, "commondir");
            if (!File.Exists(commonFile))
            {
                return null;
            }

            var common = Path.GetFullPath(File.ReadAllText(commonFile).Trim(), gitDir);
            if (!Directory.Exists(Path.Combine(common, "objects"))
                || File.ReadAllText(Path.Combine(common, "config")).Contains("objectformat", StringComparison.OrdinalIgnoreCase))
            {
                return null;
            }

            var head = File.ReadAllText(Path.Combine(gitDir, "HEAD")).Trim();
            return new GitDirs(
                Path.TrimEndingDirectorySeparator(gitDir), Path.TrimEndingDirectorySeparator(common), "sha1",
                head.StartsWith("ref: ", StringComparison.Ordinal) ? head["ref: ".Length..].Trim() : null);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null;
        }
    }

    internal static async Task<GitDirs?> AskGitAsync(string worktree, CancellationToken cancellationToken)
    {
        var dirs = await Git.RunAsync(worktree, ["rev-parse", "--path-format=absolute", "--git-common-dir", "--git-dir", "--show-object-format"], cancellationToken: cancellationToken);
        var lines = dirs.Ok ? dirs.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : [];
        if (lines.Length != 3)
        {
            return null;
        }

        var head = await Git.RunAsync(worktree, ["symbolic-ref", "-q", "HEAD"], cancellationToken: cancellationToken);
        return new GitDirs(
            Path.GetFullPath(lines[1], worktree), Path.GetFullPath(lines[0], worktree), lines[2],
            head.Ok && head.Stdout.Trim() is { Length: > 0 } branchRef ? branchRef : null);
    }

    /// <summary>The bwrap arguments that come before <c>--</c> and the command; bind order matters (later binds cover earlier ones).</summary>
    public static IReadOnlyList<string> Arguments(SandboxPolicy policy, string? home)
    {
        var args = new List<string> { "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp" };
        if (home is { Length: > 0 } && Path.IsPathRooted(home) && IsUnder(home, "/tmp") && Directory.Exists(home))
        {
            args.AddRange(["--ro-bind", home, home]);
        }

        foreach (var hidden in policy.HiddenDirs.Where(Directory.Exists))
        {
            args.AddRange(["--tmpfs", hidden]);
        }

        foreach (var socket in ContainerSockets.Where(File.Exists))
        {
            args.AddRange(["--ro-bind", "/dev/null", socket]); // a read-only mount does not stop connect(); a device in its place does
        }

        if (policy.GitCommonDir is { } git)
        {
            args.AddRange(["--ro-bind", git, git]); // again, in case it lies under /tmp or a hidden folder
            foreach (var dir in policy.GitWritableDirs.Where(Directory.Exists))
            {
                args.AddRange(["--bind", dir, dir]);
            }

            foreach (var path in new[] { Path.Combine(git, "hooks"), Path.Combine(git, "config"), Path.Combine(git, "objects") }.Where(Path.Exists))
            {
                args.AddRange(["--ro-bind", path, path]); // should a writable folder above contain them
            }

            if (policy.PrivateObjectDir is { } objects)
            {
                args.AddRange(["--setenv", "GIT_OBJECT_DIRECTORY", objects, "--setenv", "GIT_ALTERNATE_OBJECT_DIRECTORIES", Path.Combine(git, "objects")]);
            }
        }

        args.AddRange(["--bind", policy.Worktree, policy.Worktree]);
        args.AddRange(["--ro-bind-try", policy.SpillDir, policy.SpillDir]);
        if (!policy.Network)
        {
            args.Add("--unshare-net");
        }

        args.AddRange(["--unshare-pid", "--die-with-parent", "--new-session", "--chdir", policy.Worktree]);
        return args;
    }

    /// <summary>Daemons whose socket is as good as root to whoever can connect to it.</summary>
    private static readonly string[] ContainerSockets =
        ["/run/docker.sock", "/run/podman/podman.sock", "/run/containerd/containerd.sock", "/run/buildkit/buildkitd.sock"];

    private static string? FindBwrap(Func<string, string?> getEnv)
    {
        if (getEnv(BwrapVariable) is { Length: > 0 } configured)
        {
            return File.Exists(configured) ? configured : null;
        }

        return (getEnv("PATH") ?? "/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Append("/usr/bin")
            .Select(dir => Path.Combine(dir, "bwrap"))
            .FirstOrDefault(File.Exists);
    }

    private static string? VersionOf(string path)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo(path, "--version") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false })!;
            var output = process.StandardOutput.ReadToEnd().Trim();
            return process.WaitForExit(TimeSpan.FromSeconds(5)) && output.Length > 0 ? output : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }

    private static bool IsUnder(string path, string dir) =>
        path == dir || path.StartsWith(dir.TrimEnd('/') + "/", StringComparison.Ordinal);
}

/// <summary>What was found out about bwrap on this machine.</summary>
public sealed record SandboxProbe(string? Path, bool Works, string? Version, string? Problem);

/// <summary>Where one task's commands may write and whether they may reach the network.</summary>
/// <param name="GitCommonDir">The repository's git dir, read-only; null when git could not tell.</param>
/// <param name="GitWritableDirs">The parts of it <c>git commit</c> in the worktree writes: the worktree's git dir, its branch's ref folder.</param>
/// <param name="PrivateObjectDir">Where git in the sandbox writes objects; <see cref="SandboxObjects"/> adopts them after each command.</param>
/// <param name="ObjectFormat">sha1 or sha256, to check adopted objects.</param>
/// <param name="HiddenDirs">Covered with an empty tmpfs: Offload's socket, config and data, and the user's runtime dir (ssh-agent, dbus).</param>
public sealed record SandboxPolicy(string Worktree, string? GitCommonDir, IReadOnlyList<string> GitWritableDirs, string? PrivateObjectDir, string ObjectFormat, string SpillDir, bool Network, IReadOnlyList<string> HiddenDirs);

/// <summary>The <c>sandbox</c> section of Offload's config.</summary>
public sealed record SandboxSettings
{
    /// <summary>Let sandboxed commands use the network (off by default).</summary>
    public bool Network { get; init; }
}
