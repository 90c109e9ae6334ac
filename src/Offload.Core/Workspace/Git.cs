using System.Diagnostics;
using System.Text;

namespace Offload.Workspace;

/// <summary>What one git process printed and how it exited.</summary>
public sealed record GitResult(int ExitCode, string Stdout, string Stderr)
{
    public bool Ok => ExitCode == 0;
}

/// <summary>
/// Runs the <c>git</c> CLI: arguments as a list (never a shell string), output captured, no prompts,
/// C locale so messages can be matched, and the process killed when the caller cancels.
/// Variables that would point git at another repository or index are dropped unless the caller sets them,
/// and hooks never run (docs/sandbox.md).
/// </summary>
public static class Git
{
    private static readonly string[] InheritedVariablesToDrop =
    [
        "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_PREFIX", "GIT_COMMON_DIR",
        "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE",
    ];

    public static async Task<GitResult> RunAsync(
        string workingDirectory,
        IEnumerable<string> arguments,
        IReadOnlyDictionary<string, string>? environment = null,
        string? standardInput = null,
        CancellationToken cancellationToken = default)
    {
        var startInfo = StartInfo(workingDirectory, arguments, environment);
        startInfo.StandardOutputEncoding = Encoding.UTF8;
        var (exitCode, stdout, stderr) = await RunAsync(startInfo, standardInput, process => process.StandardOutput.ReadToEndAsync(CancellationToken.None), cancellationToken);
        return new GitResult(exitCode, stdout, stderr);
    }

    /// <summary>Runs git and returns its standard output as bytes (for object contents, which need not be text).</summary>
    public static async Task<(int ExitCode, byte[] Stdout, string Stderr)> RunBytesAsync(
        string workingDirectory, IEnumerable<string> arguments, string? standardInput = null, CancellationToken cancellationToken = default)
    {
        return await RunAsync(StartInfo(workingDirectory, arguments, null), standardInput, ReadAllBytesAsync, cancellationToken);

        static async Task<byte[]> ReadAllBytesAsync(Process process)
        {
            using var buffer = new MemoryStream();
            await process.StandardOutput.BaseStream.CopyToAsync(buffer, CancellationToken.None);
            return buffer.ToArray();
        }
    }

    private static ProcessStartInfo StartInfo(string workingDirectory, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment)
    {
        var startInfo = new ProcessStartInfo("git")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardErrorEncoding = Encoding.UTF8,
        };
        // No hooks, ever: core.hooksPath may point into a task's worktree (husky does), where the agent writes,
        // and Offload's own git calls run outside the sandbox.
        startInfo.ArgumentList.Add("-c");
        startInfo.ArgumentList.Add("core.hooksPath=/dev/null");
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        foreach (var name in InheritedVariablesToDrop)
        {
            startInfo.Environment.Remove(name);
        }

        startInfo.Environment["GIT_TERMINAL_PROMPT"] = "0";
        startInfo.Environment["LC_ALL"] = "C";
        startInfo.Environment["GIT_OPTIONAL_LOCKS"] = "0";
        if (environment is not null)
        {
            foreach (var (name, value) in environment)
            {
                startInfo.Environment[name] = value;
            }
        }

        return startInfo;
    }

    private static async Task<(int ExitCode, T Stdout, string Stderr)> RunAsync<T>(
        ProcessStartInfo startInfo, string? standardInput, Func<Process, Task<T>> readStdout, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        using var process = new Process { StartInfo = startInfo };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new WorkspaceException(
                WorkspaceErrors.GitFailed,
                "could not start git: " + e.Message + ". Install git (2.38 or newer) and make sure it is on PATH.",
                innerException: e);
        }

        var stdout = readStdout(process);
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        try
        {
            await using (cancellationToken.Register(() => Kill(process)))
            {
                try
                {
                    if (standardInput is not null)
                    {
                        await process.StandardInput.WriteAsync(standardInput.AsMemory(), cancellationToken);
                    }

                    process.StandardInput.Close(); // flushes what is buffered
                }
                catch (IOException)
                {
                    // git exited without reading all of its input; its exit code says why.
                }
                await process.WaitForExitAsync(cancellationToken);
            }
        }
        catch (OperationCanceledException)
        {
            Kill(process);
            throw;
        }

        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Runs git and returns its standard output; a non-zero exit becomes a <c>git_failed</c> error.</summary>
    public static async Task<string> OutputAsync(
        string workingDirectory,
        IEnumerable<string> arguments,
        IReadOnlyDictionary<string, string>? environment = null,
        string? standardInput = null,
        CancellationToken cancellationToken = default)
    {
        var argumentList = arguments.ToList();
        var result = await RunAsync(workingDirectory, argumentList, environment, standardInput, cancellationToken);
        if (!result.Ok)
        {
            throw Failed(workingDirectory, argumentList, result);
        }

        return result.Stdout;
    }

    public static WorkspaceException Failed(string workingDirectory, IReadOnlyList<string> arguments, GitResult result) =>
        new(
            WorkspaceErrors.GitFailed,
            $"`git {string.Join(' ', arguments)}` failed in {workingDirectory} (exit {result.ExitCode}): {result.Stderr.Trim()}. "
            + "Fix the repository state git reports, then try again.");

    /// <summary>Splits NUL-separated output (the <c>-z</c> form) into its fields.</summary>
    public static string[] SplitZ(string output) => output.Split('\0', StringSplitOptions.RemoveEmptyEntries);

    private static void Kill(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }
    }
}
