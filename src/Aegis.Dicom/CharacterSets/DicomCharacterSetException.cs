namespace Aegis.Dicom;

/// <summary>
/// A Specific Character Set (0008,0005) problem: an unknown or unsupported Defined Term, an invalid combination of
/// terms, or text that the declared character set cannot represent.
/// </summary>
public sealed class DicomCharacterSetException : Exception
{
    public DicomCharacterSetException()
    {
    }

    public DicomCharacterSetException(string message)
        : base(message)
    {
    }

    public DicomCharacterSetException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public DicomCharacterSetException(string message, string? term)
        : base(message)
    {
        Term = term;
    }

    /// <summary>The (0008,0005) term at fault, when the problem is a term.</summary>
    public string? Term { get; }
}
