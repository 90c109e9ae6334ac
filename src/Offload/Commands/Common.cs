using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Text;
using Offload.Config;

namespace Offload.Cli.Commands;

/// <summary>Options and plumbing shared by the commands.</summary>
public static class Common
{
    public static Option<bool> JsonOption() => new("--json") { Description = "Print JSON for scripts instead of text" };

    public static Argument<long> TaskIdArgument() => new("id")
    {
        Description = "The task's number (see `offload ls`)",
        CustomParser = r => TaskNumber(r, r.Tokens[0].Value),
        CompletionSources = { CompletionCommand.TaskIds },
    };

    /// <summary>Several task numbers (<c>wait 1 2 3</c>).</summary>
    public static Argument<long[]> TaskIdsArgument(string description) => new("ids")
    {
        Description = description,
        Arity = ArgumentArity.OneOrMore,
        CustomParser = r => [.. r.Tokens.Select(t => TaskNumber(r, t.Value))],
        CompletionSources = { CompletionCommand.TaskIds },
    };

    /// <summary>A task number, or a best-of-N group as <c>gN</c> (<c>wait g3</c>, <c>merge g3</c>).</summary>
    public static Argument<TaskRef> TaskOrGroupArgument(string description) => new("id")
    {
        Description = description,
        CustomParser = r => TaskOrGroup(r, r.Tokens[0].Value),
        CompletionSources = { CompletionCommand.TaskIds },
    };

    public static Argument<TaskRef[]> TaskOrGroupIdsArgument(string description) => new("ids")
    {
        Description = description,
        Arity = ArgumentArity.OneOrMore,
        CustomParser = r => [.. r.Tokens.Select(t => TaskOrGroup(r, t.Value))],
        CompletionSources = { CompletionCommand.TaskIds },
    };

    internal static TaskRef TaskOrGroup(ArgumentResult result, string text)
    {
        if (text.Length > 1 && text[0] is 'g' or 'G'
            && long.TryParse(text.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out var group))
        {
            return new TaskRef(group, IsGroup: true);
        }

        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var id))
        {
            return new TaskRef(id, IsGroup: false);
        }

        result.AddError($"'{text}' is neither a task number (like 12) nor a group (like g3): `offload ls` lists both");
        return default;
    }

    private static long TaskNumber(ArgumentResult result, string text)
    {
        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var id))
        {
            return id;
        }

        result.AddError($"'{text}' is not a task number: task numbers are whole numbers like 12 (`offload ls --all` lists them)");
        return 0;
    }

    // A limit of 0 or below would stop the task before its first turn ("limited"), so each limit must be above 0.

    public static Option<int?> MaxTurnsOption(string description) => new("--max-turns")
    {
        Description = description,
        HelpName = "N",
        CustomParser = r => int.TryParse(r.Tokens[0].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0
            ? n : Refuse<int?>(r, "--max-turns", "a whole number of turns above 0, e.g. 50"),
    };

    public static Option<decimal?> MaxCostOption(string description) => new("--max-cost")
    {
        Description = description,
        HelpName = "USD",
        CustomParser = r => decimal.TryParse(r.Tokens[0].Value.TrimStart('$'), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var usd) && usd > 0
            ? usd : Refuse<decimal?>(r, "--max-cost", "an amount of US dollars above 0, e.g. 2.50"),
    };

    /// <summary>A wall-clock limit in seconds, written 90s, 20m, 2h, 1d or a number of seconds.</summary>
    public static Option<int?> TimeoutOption(string description) => new("--timeout")
    {
        Description = description,
        HelpName = "DURATION",
        CustomParser = r => Seconds(r.Tokens[0].Value) ?? Refuse<int?>(r, "--timeout", "a duration above 0 like 90s, 20m or 2h"),
    };

    internal static int? Seconds(string text)
    {
        var t = text.Trim().ToLowerInvariant();
        if (t.Length == 0)
        {
            return null;
        }

        var unit = t[^1] switch { 's' => 1, 'm' => 60, 'h' => 3600, 'd' => 86400, _ => 0 };
        var number = unit == 0 ? t : t[..^1];
        return double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value)
               && Math.Ceiling(value * Math.Max(unit, 1)) is var seconds and > 0 and <= int.MaxValue
            ? (int)seconds
            : null;
    }

    private static T? Refuse<T>(ArgumentResult result, string option, string expected)
    {
        result.AddError($"{option} takes {expected}, not '{result.Tokens[0].Value}'");
        return default;
    }

    /// <summary>Runs a command's body with a connected client, turning errors into a message and an exit code.</summary>
    public static async Task<int> WithClientAsync(Func<DaemonClient, Task<int>> body, bool ensureDaemon = true, CancellationToken cancellationToken = default)
    {
        using var client = new DaemonClient(OffloadPaths.FromEnvironment());
        if (ensureDaemon)
        {
            await client.EnsureDaemonAsync(cancellationToken);
        }

        return await body(client);
    }

    /// <summary>All of stdin, as bytes (decoded strictly by <see cref="Utf8"/>, so nothing is replaced without a word).</summary>
    public static byte[] ReadStdin()
    {
        using var stdin = Console.OpenStandardInput();
        using var buffer = new MemoryStream();
        stdin.CopyTo(buffer);
        return buffer.ToArray();
    }

    /// <summary>Text that must be UTF-8 (a prompt, a reply); a byte-order mark is dropped.</summary>
    public static string Utf8(byte[] bytes, string what)
    {
        try
        {
            return StrictUtf8.GetString(bytes.AsSpan().StartsWith(StrictUtf8.Preamble) ? bytes.AsSpan(StrictUtf8.Preamble.Length) : bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new CliException(ExitCodes.BadInput, $"{what} is not UTF-8 text (byte {e.Index + 1:N0} does not decode)",
                "save it as UTF-8 (e.g. iconv -f latin1 -t utf-8), or give plain text");
        }
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: true, throwOnInvalidBytes: true);

    public static string Id(long id) => id.ToString(CultureInfo.InvariantCulture);
}

/// <summary>A task (<c>12</c>) or a best-of-N group (<c>g3</c>) named on the command line.</summary>
public readonly record struct TaskRef(long Id, bool IsGroup)
{
    public override string ToString() => (IsGroup ? "g" : "") + Id.ToString(CultureInfo.InvariantCulture);
}
