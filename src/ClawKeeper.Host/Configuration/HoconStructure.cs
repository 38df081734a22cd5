namespace ClawKeeper.Host.Configuration;

/// <summary>Where a configuration file is malformed: 1-based line and column, and what is wrong there.</summary>
public sealed record HoconSyntaxError(int Line, int Column, string Problem)
{
    public override string ToString() => $"line {Line}, column {Column}: {Problem}";
}

/// <summary>
/// A structural check of a HOCON file before Akka's parser reads it. Akka's parser is lenient: it accepts an
/// unclosed <c>{</c>, a stray <c>}</c> or <c>]</c> and a key without a value, and the process then runs on
/// defaults. This check knows HOCON's shape (objects, arrays, fields <c>key = value</c> / <c>key { }</c>,
/// value concatenation, quoted and triple-quoted strings, substitutions, comments, <c>include</c>) and names the
/// first place where the file breaks it. It does not evaluate anything: Akka's parser still builds the config.
/// </summary>
public static class HoconStructure
{
    private enum Kind { OpenBrace, CloseBrace, OpenBracket, CloseBracket, Comma, Separator, Newline, Text, Quoted, Substitution, End }

    private readonly record struct Token(Kind Kind, string Text, int Line, int Column);

    /// <summary>The first structural error of <paramref name="text"/>, or null when its structure is sound.</summary>
    public static HoconSyntaxError? Check(string text)
    {
        try
        {
            var tokens = Tokenize(text);
            new Parser(tokens).Document();
            return null;
        }
        catch (SyntaxException ex)
        {
            return ex.Error;
        }
    }

    private sealed class SyntaxException(HoconSyntaxError error) : Exception(error.ToString())
    {
        public HoconSyntaxError Error { get; } = error;
    }

    private static SyntaxException Fail(Token at, string problem) => new(new HoconSyntaxError(at.Line, at.Column, problem));

    private static string Describe(Token token) => token.Kind switch
    {
        Kind.End => "the end of the file",
        Kind.Newline => "the end of the line",
        Kind.Quoted => $"the string {Shorten(token.Text)}",
        Kind.Text => $"'{Shorten(token.Text)}'",
        _ => $"'{token.Text}'",
    };

    private static string Shorten(string text) => text.Length <= 40 ? text : text[..39] + "…";

    // The structural characters: they end unquoted text (so do '${', '+=' and '//'). HOCON forbids a few more
    // ('@', '!', '?', ...) in unquoted text, but Akka's parser takes them, so files that work today keep working.
    private const string Structural = "\"{}[]:=,#";

    private static bool EndsText(string text, int j) =>
        char.IsWhiteSpace(text[j]) || Structural.Contains(text[j])
        || (j + 1 < text.Length && ((text[j] == '/' && text[j + 1] == '/') || (text[j] == '$' && text[j + 1] == '{') || (text[j] == '+' && text[j + 1] == '=')));

    private static List<Token> Tokenize(string text)
    {
        var tokens = new List<Token>();
        int i = 0, line = 1, column = 1;

        void Advance(int count)
        {
            for (var k = 0; k < count && i < text.Length; k++, i++)
            {
                if (text[i] == '\n') { line++; column = 1; }
                else column++;
            }
        }

        while (i < text.Length)
        {
            var c = text[i];
            var (startLine, startColumn) = (line, column);
            if (c == '\n')
            {
                tokens.Add(new Token(Kind.Newline, "\n", startLine, startColumn));
                Advance(1);
            }
            else if (char.IsWhiteSpace(c) || c == '\uFEFF')
                Advance(1);
            else if (c == '#' || (c == '/' && i + 1 < text.Length && text[i + 1] == '/'))
            {
                while (i < text.Length && text[i] != '\n') Advance(1);
            }
            else if (c == '"' && i + 2 < text.Length && text[i + 1] == '"' && text[i + 2] == '"')
            {
                var end = text.IndexOf("\"\"\"", i + 3, StringComparison.Ordinal);
                if (end < 0) throw Fail(new Token(Kind.Quoted, "\"\"\"", startLine, startColumn), "unclosed triple-quoted string (\"\"\")");
                while (end + 3 < text.Length && text[end + 3] == '"') end++; // """ may end with extra quotes
                var literal = text[i..(end + 3)];
                Advance(end + 3 - i);
                tokens.Add(new Token(Kind.Quoted, literal, startLine, startColumn));
            }
            else if (c == '"')
            {
                var j = i + 1;
                while (j < text.Length && text[j] != '"' && text[j] != '\n')
                    j += text[j] == '\\' ? 2 : 1;
                if (j >= text.Length || text[j] != '"')
                    throw Fail(new Token(Kind.Quoted, "\"", startLine, startColumn), "unclosed string (a '\"' without its closing '\"' on the same line)");
                var literal = text[i..(j + 1)];
                Advance(j + 1 - i);
                tokens.Add(new Token(Kind.Quoted, literal, startLine, startColumn));
            }
            else if (c == '$' && i + 1 < text.Length && text[i + 1] == '{')
            {
                var end = text.IndexOf('}', i + 2);
                var newline = text.IndexOf('\n', i + 2);
                if (end < 0 || (newline >= 0 && newline < end))
                    throw Fail(new Token(Kind.Substitution, "${", startLine, startColumn), "unclosed substitution '${'");
                var literal = text[i..(end + 1)];
                Advance(end + 1 - i);
                tokens.Add(new Token(Kind.Substitution, literal, startLine, startColumn));
            }
            else if (c is '{' or '}' or '[' or ']' or ',' or '=' or ':')
            {
                var kind = c switch
                {
                    '{' => Kind.OpenBrace, '}' => Kind.CloseBrace, '[' => Kind.OpenBracket, ']' => Kind.CloseBracket,
                    ',' => Kind.Comma, _ => Kind.Separator,
                };
                tokens.Add(new Token(kind, c.ToString(), startLine, startColumn));
                Advance(1);
            }
            else if (c == '+' && i + 1 < text.Length && text[i + 1] == '=')
            {
                tokens.Add(new Token(Kind.Separator, "+=", startLine, startColumn));
                Advance(2);
            }
            else
            {
                var j = i;
                while (j < text.Length && !EndsText(text, j)) j++;
                var literal = text[i..j];
                Advance(j - i);
                tokens.Add(new Token(Kind.Text, literal, startLine, startColumn));
            }
        }
        tokens.Add(new Token(Kind.End, "", line, column));
        return tokens;
    }

    private sealed class Parser(List<Token> tokens)
    {
        private int _position;

        private Token Peek => tokens[_position];

        private Token Next() => tokens[_position++];

        private void SkipNewlines()
        {
            while (Peek.Kind == Kind.Newline) _position++;
        }

        public void Document()
        {
            SkipNewlines();
            if (Peek.Kind == Kind.OpenBracket) Array();
            else if (Peek.Kind == Kind.OpenBrace) Object();
            else Fields(null);
            SkipNewlines();
            if (Peek.Kind != Kind.End)
                throw Fail(Peek, Peek.Kind is Kind.CloseBrace or Kind.CloseBracket
                    ? $"'{Peek.Text}' closes nothing (no '{(Peek.Kind == Kind.CloseBrace ? '{' : '[')}' is open here)"
                    : $"unexpected {Describe(Peek)} after the end of the document");
        }

        /// <summary>Fields until <paramref name="opener"/>'s '}' (or the end of the file at the top level).</summary>
        private void Fields(Token? opener)
        {
            while (true)
            {
                while (Peek.Kind is Kind.Newline or Kind.Comma) _position++;
                if (Peek.Kind == Kind.End)
                {
                    if (opener is { } open) throw Fail(open, "unclosed '{': the file ends before its '}'");
                    return;
                }
                if (Peek.Kind == Kind.CloseBrace)
                {
                    if (opener is null) throw Fail(Peek, "'}' closes nothing (no '{' is open here)");
                    return;
                }
                Field();
                if (Peek.Kind is not (Kind.Newline or Kind.Comma or Kind.End or Kind.CloseBrace))
                    throw Fail(Peek, $"unexpected {Describe(Peek)}: a field ends at a new line, ',' or '}}'");
            }
        }

        private void Field()
        {
            var start = Peek;
            var key = new List<Token>();
            while (Peek.Kind is Kind.Text or Kind.Quoted) key.Add(Next());
            if (key.Count == 0)
                throw Fail(Peek, $"expected a key, found {Describe(Peek)}");
            if (key[0].Kind == Kind.Text && key[0].Text == "include" && key.Count > 1)
            {
                // include "file" | include required("file") | include file("…") — not a field; read to the end of the line.
                while (Peek.Kind is not (Kind.Newline or Kind.End or Kind.CloseBrace)) _position++;
                return;
            }
            var name = string.Join(" ", key.Select(k => k.Text));
            if (Peek.Kind == Kind.OpenBrace)
            {
                Object();
                return;
            }
            if (Peek.Kind != Kind.Separator)
                throw Fail(Peek, $"expected '=', ':' or '{{' after the key '{Shorten(name)}' (line {start.Line}, column {start.Column}), found {Describe(Peek)}");
            var separator = Next();
            Value(separator, name);
        }

        private void Value(Token after, string key)
        {
            var parts = 0;
            while (true)
            {
                switch (Peek.Kind)
                {
                    case Kind.Text or Kind.Quoted or Kind.Substitution:
                        _position++;
                        break;
                    case Kind.OpenBrace:
                        Object();
                        break;
                    case Kind.OpenBracket:
                        Array();
                        break;
                    default:
                        if (parts == 0)
                            throw Fail(Peek, $"'{Shorten(key)}' has no value after '{after.Text}' (line {after.Line}, column {after.Column}); found {Describe(Peek)}");
                        return;
                }
                parts++;
            }
        }

        private void Object()
        {
            var open = Next();
            Fields(open);
            Next(); // '}'
        }

        private void Array()
        {
            var open = Next();
            while (true)
            {
                while (Peek.Kind is Kind.Newline or Kind.Comma) _position++;
                if (Peek.Kind == Kind.CloseBracket)
                {
                    _position++;
                    return;
                }
                if (Peek.Kind == Kind.End) throw Fail(open, "unclosed '[': the file ends before its ']'");
                if (Peek.Kind == Kind.CloseBrace) throw Fail(Peek, $"'}}' inside the array opened at line {open.Line}, column {open.Column} (its ']' is missing)");
                if (Peek.Kind == Kind.Separator) throw Fail(Peek, $"unexpected '{Peek.Text}' inside the array opened at line {open.Line}, column {open.Column}");
                Value(open, "array element");
                if (Peek.Kind is not (Kind.Newline or Kind.Comma or Kind.CloseBracket))
                    throw Fail(Peek, $"unexpected {Describe(Peek)} inside the array opened at line {open.Line}, column {open.Column}");
            }
        }
    }
}
