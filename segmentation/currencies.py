"""ISO 4217 allow-list for event amounts: circulating currencies and their minor-unit exponent.

Fund codes (BOV, CHE, CLF, ...), precious metals (XAU, ...), SDR and test codes are left out on purpose:
nobody pays for an order in them. Codes withdrawn recently (ANG, BGN, HRK, SLL, ZWL) stay in the list
because old event logs must replay to the same result; only ever add codes, never remove one.
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

_ZERO: Final = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF"
_THREE: Final = "BHD IQD JOD KWD LYD OMR TND"
_TWO: Final = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF "
    "CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL "
    "HRK HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT "
    "MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR "
    "SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD "
    "UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG ZWL"
)

CURRENCY_EXPONENT: Final[Mapping[str, int]] = MappingProxyType(
    dict(
        sorted(
            [(code, 0) for code in _ZERO.split()]
            + [(code, 2) for code in _TWO.split()]
            + [(code, 3) for code in _THREE.split()]
        )
    )
)
"""Accepted currency code -> number of minor-unit digits (EUR 2: cents; JPY 0; KWD 3), read-only."""
