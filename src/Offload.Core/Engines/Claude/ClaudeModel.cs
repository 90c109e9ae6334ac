using Offload.Models;
using Offload.Protocol;

namespace Offload.Engines.Claude;

/// <summary>
/// Which model Claude Code runs, as a task stores it: <c>default</c> (no <c>--model</c>: Claude Code's own
/// choice, from its settings), <c>anthropic:NAME</c> (<c>--model NAME</c>; a bare <c>opus</c> means
/// <c>anthropic:opus</c>), or <c>sim:NAME</c> (the daemon's Simulator, scenario NAME).
/// </summary>
public static class ClaudeModel
{
    public const string Default = "default";

    public static string Resolve(string? model, ModelSettings settings)
    {
        var text = model?.Trim() ?? "";
        if (text.Length == 0 || text == Default)
        {
            return Default;
        }

        if (!text.Contains(':', StringComparison.Ordinal))
        {
            return "anthropic:" + text;
        }

        ModelRef parsed;
        try
        {
            parsed = ModelRef.Parse(text, settings);
        }
        catch (ModelConfigException e)
        {
            throw new OffloadException(ErrorCodes.NoModel, e.Message);
        }

        return parsed.Provider is "anthropic" or "sim"
            ? parsed.ToString()
            : throw new OffloadException(ErrorCodes.NoModel,
                $"the claude engine runs Anthropic models through Claude Code, not {parsed}",
                "use --model anthropic:NAME (or opus, sonnet), leave --model out for Claude Code's own default, " +
                "try it offline with --model sim:demo, or run this model with --engine builtin");
    }

    /// <summary>The <c>--model</c> value for Claude Code, or null for its default.</summary>
    public static string? CliName(string taskModel) =>
        taskModel == Default ? null : taskModel[(taskModel.IndexOf(':', StringComparison.Ordinal) + 1)..];

    public static bool IsSimulated(string taskModel) => taskModel.StartsWith("sim:", StringComparison.Ordinal);
}
