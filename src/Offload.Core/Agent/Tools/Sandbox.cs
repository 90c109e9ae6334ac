using System.Diagnostics;
using System.Globalization;
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

        // With a user namespace where the kernel allows one; without, the capabilities are still dropped.
        var withUserNamespace = TryRun(path, [.. ProbeArguments, .. Confinement(userNamespace: true), "--", "/bin/true"]);
        if (withUserNamespace.Problem is null)
        {
            return new SandboxProbe(path, true, VersionOf(path), null, UserNamespace: true);
        }

        var without = TryRun(path, [.. ProbeArguments, .. Confinement(userNamespace: false), "--", "/bin/true"]);
        return without.Problem is null ? new SandboxProbe(path, true, VersionOf(path), null) : without;
    }

    /// <summary>The mounts of <see cref="Arguments"/> that every sandbox has, for the trial run.</summary>
    private static readonly string[] ProbeArguments =
        ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--size", "1048576", "--tmpfs", "/tmp", "--unshare-net"];

    /// <summary>
    /// What makes root in the sandbox no more than a plain user (docs/sandbox.md, "Capabilities"): no capabilities
    /// (so no mount, umount, nsenter, ptrace of the daemon, raw sockets), its own pid namespace and session, and, where the
    /// kernel allows, its own user namespace in which it cannot make another (a new one would hand the capabilities back
    /// inside it). bwrap always sets no_new_privs, so no setuid program gains anything either.
    /// </summary>
    private static IEnumerable<string> Confinement(bool userNamespace) =>
        [.. userNamespace ? (string[])["--unshare-user", "--disable-userns"] : [], "--unshare-pid", "--die-with-parent", "--new-session", "--cap-drop", "ALL"];

    private static SandboxProbe TryRun(string path, IEnumerable<string> arguments)
    {
        var probe = new ProcessStartInfo(path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            probe.ArgumentList.Add(argument);
        }

        try
        {
            using var process = Process.Start(probe)!;
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(TimeSpan.FromSeconds(10)))
            {
                process.Kill(entireProcessTree: true);
                return new SandboxProbe(path, false, VersionOf(path), $"{path} did not finish a trial run within 10 s; shell commands run without a sandbox.");
            }

            return process.ExitCode == 0
                ? new SandboxProbe(path, true, null, null)
                : new SandboxProbe(path, false, VersionOf(path),
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
            spillDir, settings.Network, hidden) { Settings = settings };
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
    /// <param name="allowRead">Credential paths the program needs on top of the user's <see cref="SandboxSettings.AllowRead"/>
    /// (Claude Code run in the sandbox reads its own <c>~/.claude/.credentials.json</c>).</param>
    public static IReadOnlyList<string> Arguments(SandboxPolicy policy, string? home, IReadOnlyList<string>? allowRead = null)
    {
        var args = new List<string> { "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc" };
        if (policy.Settings.Limits.TmpSizeMb > 0)
        {
            args.AddRange(["--size", (policy.Settings.Limits.TmpSizeMb * 1024L * 1024).ToString(CultureInfo.InvariantCulture)]); // /tmp is RAM
        }

        args.AddRange(["--tmpfs", "/tmp"]);
        if (home is { Length: > 0 } && Path.IsPathRooted(home) && IsUnder(home, "/tmp") && Directory.Exists(home))
        {
            args.AddRange(["--ro-bind", home, home]);
        }

        foreach (var hidden in policy.HiddenDirs.Where(Directory.Exists))
        {
            args.AddRange(["--tmpfs", hidden]);
        }

        args.AddRange(Credentials.Arguments(home, [.. policy.Settings.AllowRead, .. allowRead ?? []]));

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

        args.AddRange(Confinement(Probed.Value.UserNamespace));
        args.AddRange(["--chdir", policy.Worktree]);
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
/// <param name="UserNamespace">Whether commands get a user namespace of their own (<c>--unshare-user --disable-userns</c>).</param>
public sealed record SandboxProbe(string? Path, bool Works, string? Version, string? Problem, bool UserNamespace = false);

/// <summary>Where one task's commands may write and whether they may reach the network.</summary>
/// <param name="GitCommonDir">The repository's git dir, read-only; null when git could not tell.</param>
/// <param name="GitWritableDirs">The parts of it <c>git commit</c> in the worktree writes: the worktree's git dir, its branch's ref folder.</param>
/// <param name="PrivateObjectDir">Where git in the sandbox writes objects; <see cref="SandboxObjects"/> adopts them after each command.</param>
/// <param name="ObjectFormat">sha1 or sha256, to check adopted objects.</param>
/// <param name="HiddenDirs">Covered with an empty tmpfs: Offload's socket, config and data, and the user's runtime dir (ssh-agent, dbus).</param>
public sealed record SandboxPolicy(string Worktree, string? GitCommonDir, IReadOnlyList<string> GitWritableDirs, string? PrivateObjectDir, string ObjectFormat, string SpillDir, bool Network, IReadOnlyList<string> HiddenDirs)
{
    /// <summary>The user's <c>sandbox</c> settings: credentials opened on purpose, resource limits.</summary>
    public SandboxSettings Settings { get; init; } = new();
}

/// <summary>The <c>sandbox</c> section of Offload's config (setters, not init: the JSON source generator sets an absent init property to null).</summary>
public sealed record SandboxSettings
{
    /// <summary>Let sandboxed commands use the network (off by default).</summary>
    public bool Network { get; init; }

    /// <summary>Credential paths (<c>~/.aws</c>, <c>~/.ssh/known_hosts</c>) commands may read after all; <see cref="Credentials"/> hides the rest.</summary>
    public List<string> AllowRead { get; set; } = [];

    /// <summary>Processes, memory and disk for each command (<see cref="CommandLimits"/>).</summary>
    public SandboxLimits Limits { get; set; } = new();
}

/// <summary>The <c>sandbox.limits</c> section: what one task's command may use. 0 turns a limit off.</summary>
public sealed record SandboxLimits
{
    /// <summary>Processes and threads at once (a cgroup's <c>pids.max</c> counts threads, and a parallel build on many cores has thousands).</summary>
    public int MaxProcesses { get; set; } = 4096;

    /// <summary>Memory of all the command's processes together, its private <c>/tmp</c> included.</summary>
    public int MaxMemoryMb { get; set; } = 4096;

    /// <summary>What the worktree (and the task's git dir) may grow to while a command runs.</summary>
    public int MaxDiskMb { get; set; } = 10240;

    /// <summary>The size of the private <c>/tmp</c>, which lives in memory.</summary>
    public int TmpSizeMb { get; set; } = 1024;
}
