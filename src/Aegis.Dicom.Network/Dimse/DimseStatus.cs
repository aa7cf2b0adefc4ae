namespace Aegis.Dicom.Network.Dimse;

/// <summary>PS3.7 C.1: the category a status code belongs to.</summary>
public enum DimseStatusCategory { Success, Warning, Failure, Cancel, Pending }

/// <summary>A DIMSE status (0000,0900) with an optional error comment (0000,0902).</summary>
public readonly record struct DimseStatus(ushort Code, string? ErrorComment = null)
{
    /// <summary>PS3.7 Annex C: the category of a status code.</summary>
    public DimseStatusCategory Category => Categorize(Code);

    public bool IsSuccess => Category == DimseStatusCategory.Success;
    public bool IsPending => Category == DimseStatusCategory.Pending;
    /// <summary>True for every category that ends the operation (success, warning, failure, cancel).</summary>
    public bool IsFinal => Category != DimseStatusCategory.Pending;

    public static DimseStatusCategory Categorize(ushort code) => code switch
    {
        0x0000 => DimseStatusCategory.Success,
        0xFF00 or 0xFF01 => DimseStatusCategory.Pending,
        0xFE00 => DimseStatusCategory.Cancel,
        // PS3.7 C.3-C.5: 0001, 0107 (attribute list error), 0116 (attribute value out of range) and Bxxx are warnings.
        0x0001 or 0x0107 or 0x0116 => DimseStatusCategory.Warning,
        >= 0xB000 and <= 0xBFFF => DimseStatusCategory.Warning,
        _ => DimseStatusCategory.Failure,
    };

    public static readonly DimseStatus Success = new(0x0000);
    public static readonly DimseStatus Pending = new(0xFF00);
    /// <summary>PS3.4 C.4.1.1.4: pending, but one or more optional keys were not supported for matching.</summary>
    public static readonly DimseStatus PendingWarning = new(0xFF01);
    public static readonly DimseStatus Cancel = new(0xFE00);
    /// <summary>PS3.4 C.4.2.1.5: sub-operations complete, one or more failures or warnings.</summary>
    public static readonly DimseStatus SubOperationsCompleteWithFailures = new(0xB000);
    /// <summary>PS3.4 B.2.3: coercion of data elements.</summary>
    public static readonly DimseStatus CoercionOfDataElements = new(0xB000);
    /// <summary>PS3.4 B.2.3: out of resources.</summary>
    public static readonly DimseStatus OutOfResources = new(0xA700);
    /// <summary>PS3.4 C.4.2.1.5: refused, move destination unknown.</summary>
    public static readonly DimseStatus MoveDestinationUnknown = new(0xA801);
    /// <summary>PS3.4 B.2.3: data set does not match SOP class.</summary>
    public static readonly DimseStatus DataSetDoesNotMatchSopClass = new(0xA900);
    /// <summary>PS3.4 C.4: identifier does not match SOP class.</summary>
    public static readonly DimseStatus IdentifierDoesNotMatchSopClass = new(0xA900);
    /// <summary>PS3.4: cannot understand / unable to process.</summary>
    public static readonly DimseStatus CannotUnderstand = new(0xC000);
    /// <summary>PS3.7 C.5.10: not authorized (refused).</summary>
    public static readonly DimseStatus NotAuthorized = new(0x0124);
    /// <summary>PS3.7 C.5.20: SOP class not supported.</summary>
    public static readonly DimseStatus SopClassNotSupported = new(0x0122);
    /// <summary>PS3.7 C.5.13: processing failure.</summary>
    public static readonly DimseStatus ProcessingFailure = new(0x0110);
    /// <summary>PS3.7 C.5.15: unrecognized operation.</summary>
    public static readonly DimseStatus UnrecognizedOperation = new(0x0211);
    /// <summary>PS3.7 C.5.9: duplicate SOP instance.</summary>
    public static readonly DimseStatus DuplicateSopInstance = new(0x0111);
    /// <summary>PS3.7 C.5.11: no such SOP instance.</summary>
    public static readonly DimseStatus NoSuchSopInstance = new(0x0112);

    public override string ToString() => $"0x{Code:X4} ({Category}){(ErrorComment is null ? "" : ": " + ErrorComment)}";
}

/// <summary>Thrown by a service handler to end an operation with a given status (PS3.7 status carried with the error).</summary>
public sealed class DimseStatusException(DimseStatus status) : Exception($"DIMSE status {status}")
{
    public DimseStatus Status { get; } = status;
}
