"""The downstream agencies of the Jinan notice (section 四), by their stable keys."""

from __future__ import annotations

from enum import StrEnum


class Agency(StrEnum):
    """Each key names a token role (`agency:<key>`) and a feed topic (`permits.rights.<key>.v1`)."""

    HOTEL = "hotel"
    TRANSPORT = "transport"
    FINANCE = "finance"
    HOUSING_FUND = "housing_fund"
    HR_SOCIAL = "hr_social"
    EDUCATION = "education"
    HEALTH = "health"
    CULTURE_SPORT = "culture_sport"
    LEGAL_AID = "legal_aid"
    CIVIL_AFFAIRS = "civil_affairs"
    VEHICLE = "vehicle"
    HMT_OFFICE = "hmt_office"
