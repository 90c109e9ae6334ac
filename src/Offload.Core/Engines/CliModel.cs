using Offload.Models;
using Offload.Protocol;

namespace Offload.Engines;

/// <summary>
/// Which model an engine that runs another agent's CLI (Claude Code, Codex) uses, as a task stores it: <c>default</c>
/// (no model flag: the CLI's own choice, from its settings), <c>PROVIDER:NAME</c> (a bare name means the engine's
/// provider), or <c>sim:NAME</c> (the daemon's Simulator, scenario NAME).
/// </summary>
/// <param name="Engine">The engine's name, as <c>--engine</c> takes it.</param>
/// <param name="Provider">The one provider the CLI speaks to, e.g. <c>anthropic</c>.</param>
/// <param name="Models">Whose models, for messages: "Anthropic models through Claude Code".</param>
/// <param name="Hint">What to type instead, for a model of another provider.</param>
public sealed record CliModel(string Engine, string Provider, string Models, string Hint)
{
    public const string Default = "default";

    public static readonly CliModel Claude = new("claude", "anthropic", "Anthropic models through Claude Code",
        "use --model anthropic:NAME (or opus, sonnet), leave --model out for Claude Code's own default, ");

    public static readonly CliModel Codex = new("codex", "openai", "OpenAI models through Codex CLI",
        "use --model openai:NAME (or a bare gpt-…), leave --model out for Codex's own default, ");

    /// <summary>The model as the task stores it; exit 7 (no model) for one of another provider.</summary>
    public string Resolve(string? model, ModelSettings settings)
    {
        var text = model?.Trim() ?? "";
        if (text.Length == 0 || text == Default)
        {
            return Default;
        }

        if (!text.Contains(':', StringComparison.Ordinal))
        {
            return Provider + ":" + text;
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

        return parsed.Provider == Provider || parsed.Provider == "sim"
            ? parsed.ToString()
            : throw new OffloadException(ErrorCodes.NoModel, $"the {Engine} engine runs {Models}, not {parsed}",
                Hint + "try it offline with --model sim:demo, or run this model with --engine builtin");
    }

    /// <summary>The model flag's value for the CLI, or null for its default.</summary>
    public static string? CliName(string taskModel) =>
        taskModel == Default ? null : taskModel[(taskModel.IndexOf(':', StringComparison.Ordinal) + 1)..];

    public static bool IsSimulated(string taskModel) => taskModel.StartsWith("sim:", StringComparison.Ordinal);
}
