//! What cloudbill knows of AWS's vocabulary, shared by every AWS source (the Hyperbilling
//! provider, CUR import): FOCUS values derived from AWS codes.

/// The FOCUS 1.2 ServiceCategory of an AWS service code (`Other` for a code not listed).
///
/// | category | service codes |
/// |---|---|
/// | Compute | AmazonEC2, AWSLambda, AmazonECS, AmazonEKS, AmazonLightsail, AWSBatch |
/// | Storage | AmazonS3, AmazonEFS, AmazonGlacier, AWSBackup, AmazonFSx |
/// | Databases | AmazonRDS, AmazonDynamoDB, AmazonElastiCache, AmazonDocDB, AmazonNeptune |
/// | Networking | AWSDataTransfer, AmazonVPC, AmazonCloudFront, AmazonRoute53, AWSELB, AWSDirectConnect, AWSGlobalAccelerator |
/// | Management and Governance | AmazonCloudWatch, AWSCloudTrail, AWSConfig, AWSSystemsManager |
/// | Security | awskms, AWSSecretsManager, awswaf, AmazonGuardDuty, AWSSecurityHub |
/// | Integration | AmazonSNS, AWSQueueService, AmazonSQS, AWSEvents, AmazonMQ, AmazonStates |
/// | Analytics | AmazonAthena, AWSGlue, AmazonKinesis, ElasticMapReduce, AmazonES, AmazonRedshift, AmazonQuickSight |
/// | AI and Machine Learning | AmazonSageMaker, AmazonBedrock, AmazonRekognition, comprehend |
/// | Identity | AmazonCognito |
pub fn service_category(service_code: &str) -> &'static str {
    match service_code {
        "AmazonEC2" | "AWSLambda" | "AmazonECS" | "AmazonEKS" | "AmazonLightsail" | "AWSBatch" => {
            "Compute"
        }
        "AmazonS3" | "AmazonEFS" | "AmazonGlacier" | "AWSBackup" | "AmazonFSx" => "Storage",
        "AmazonRDS" | "AmazonDynamoDB" | "AmazonElastiCache" | "AmazonDocDB" | "AmazonNeptune" => {
            "Databases"
        }
        "AWSDataTransfer"
        | "AmazonVPC"
        | "AmazonCloudFront"
        | "AmazonRoute53"
        | "AWSELB"
        | "AWSDirectConnect"
        | "AWSGlobalAccelerator" => "Networking",
        "AmazonCloudWatch" | "AWSCloudTrail" | "AWSConfig" | "AWSSystemsManager" => {
            "Management and Governance"
        }
        "awskms" | "AWSSecretsManager" | "awswaf" | "AmazonGuardDuty" | "AWSSecurityHub" => {
            "Security"
        }
        "AmazonSNS" | "AWSQueueService" | "AmazonSQS" | "AWSEvents" | "AmazonMQ"
        | "AmazonStates" => "Integration",
        "AmazonAthena" | "AWSGlue" | "AmazonKinesis" | "ElasticMapReduce" | "AmazonES"
        | "AmazonRedshift" | "AmazonQuickSight" => "Analytics",
        "AmazonSageMaker" | "AmazonBedrock" | "AmazonRekognition" | "comprehend" => {
            "AI and Machine Learning"
        }
        "AmazonCognito" => "Identity",
        _ => "Other",
    }
}

/// An AWS pricing unit in FOCUS UnitFormat: abbreviated time units spelt out and plural after
/// a hyphen (`Hrs` → `Hours`, `GB-Mo` → `GB-Months`, `Obj-Month` → `Obj-Months`); any other
/// unit unchanged.
pub fn focus_unit(unit: &str) -> std::borrow::Cow<'_, str> {
    let time = |t: &str| match t {
        "Hrs" | "Hr" | "Hour" | "Hours" | "hrs" | "hours" => Some("Hours"),
        "Mo" | "Mos" | "Month" | "Months" | "month" => Some("Months"),
        "Sec" | "Secs" | "Second" | "Seconds" | "second" | "seconds" => Some("Seconds"),
        "Day" | "Days" | "day" => Some("Days"),
        "Min" | "Mins" | "Minute" | "Minutes" => Some("Minutes"),
        _ => None,
    };
    if let Some((base, t)) = unit.rsplit_once('-') {
        if let Some(t) = time(t).filter(|_| !base.is_empty()) {
            return std::borrow::Cow::Owned(format!("{base}-{t}"));
        }
    }
    match unit {
        "Hrs" | "Hr" | "hrs" => std::borrow::Cow::Borrowed("Hours"),
        _ => std::borrow::Cow::Borrowed(unit),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn units_follow_focus_unit_format() {
        for (aws, focus) in [
            ("GB-Mo", "GB-Months"),
            ("Obj-Month", "Obj-Months"),
            ("Hrs", "Hours"),
            ("vCPU-Hours", "vCPU-Hours"),
            ("ReadCapacityUnit-Hrs", "ReadCapacityUnit-Hours"),
            ("Lambda-GB-Second", "Lambda-GB-Seconds"),
            ("Requests", "Requests"),
            ("GB", "GB"),
            ("-Mo", "-Mo"),
        ] {
            assert_eq!(super::focus_unit(aws), focus, "{aws}");
        }
    }

    #[test]
    fn codes_map_to_focus_categories() {
        assert_eq!(super::service_category("AmazonEC2"), "Compute");
        assert_eq!(super::service_category("AmazonS3"), "Storage");
        assert_eq!(super::service_category("SomethingNew"), "Other");
    }
}
