//! Channels, budgets, fired thresholds, events and the outbox (`NotifyStore`).

#[allow(clippy::wildcard_imports)]
use super::*;

#[async_trait]
impl crate::NotifyStore for MemoryStore {
    async fn create_channel(
        &self,
        channel: &Channel,
        secret: Option<&ClientSecret>,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state
            .channels
            .iter()
            .any(|(c, _)| c.domain == channel.domain && c.name == channel.name)
        {
            return Err(StoreError::exists("channel", &channel.name));
        }
        state.channels.push((channel.clone(), secret.cloned()));
        Ok(())
    }

    async fn channels(&self, domain: DomainId) -> Result<Vec<Channel>, StoreError> {
        let state = self.lock();
        let mut out: Vec<Channel> = state
            .channels
            .iter()
            .filter(|(c, _)| c.domain == domain)
            .map(|(c, _)| c.clone())
            .collect();
        out.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        Ok(out)
    }

    async fn channel_secret(
        &self,
        domain: DomainId,
        id: ChannelId,
    ) -> Result<Option<ClientSecret>, StoreError> {
        let state = self.lock();
        state
            .channels
            .iter()
            .find(|(c, _)| c.domain == domain && c.id == id)
            .map(|(_, s)| s.clone())
            .ok_or_else(|| not_found("channel", id))
    }

    async fn delete_channel(&self, domain: DomainId, id: ChannelId) -> Result<(), StoreError> {
        let mut state = self.lock();
        let before = state.channels.len();
        state
            .channels
            .retain(|(c, _)| !(c.domain == domain && c.id == id));
        if state.channels.len() == before {
            return Err(not_found("channel", id));
        }
        state.deliveries.retain(|d| d.channel != id);
        Ok(())
    }

    async fn create_budget(&self, budget: &Budget) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state
            .budgets
            .iter()
            .any(|b| b.domain == budget.domain && b.name == budget.name)
        {
            return Err(StoreError::exists("budget", &budget.name));
        }
        state.budgets.push(budget.clone());
        Ok(())
    }

    async fn budgets(&self, domain: DomainId) -> Result<Vec<Budget>, StoreError> {
        let state = self.lock();
        let mut out: Vec<Budget> = state
            .budgets
            .iter()
            .filter(|b| b.domain == domain)
            .cloned()
            .collect();
        out.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        Ok(out)
    }

    async fn update_budget(&self, budget: &Budget) -> Result<(), StoreError> {
        let mut state = self.lock();
        if !state
            .budgets
            .iter()
            .any(|b| b.domain == budget.domain && b.id == budget.id)
        {
            return Err(not_found("budget", budget.id));
        }
        if state
            .budgets
            .iter()
            .any(|b| b.domain == budget.domain && b.name == budget.name && b.id != budget.id)
        {
            return Err(StoreError::exists("budget", &budget.name));
        }
        let slot = state
            .budgets
            .iter_mut()
            .find(|b| b.domain == budget.domain && b.id == budget.id)
            .ok_or_else(|| not_found("budget", budget.id))?;
        *slot = budget.clone();
        state.fired.retain(|f| f.budget != budget.id);
        Ok(())
    }

    async fn delete_budget(&self, domain: DomainId, id: BudgetId) -> Result<(), StoreError> {
        let mut state = self.lock();
        let before = state.budgets.len();
        state
            .budgets
            .retain(|b| !(b.domain == domain && b.id == id));
        if state.budgets.len() == before {
            return Err(not_found("budget", id));
        }
        state.fired.retain(|f| f.budget != id);
        Ok(())
    }

    async fn fired_thresholds(&self, domain: DomainId) -> Result<Vec<FiredThreshold>, StoreError> {
        let state = self.lock();
        let ours: Vec<BudgetId> = state
            .budgets
            .iter()
            .filter(|b| b.domain == domain)
            .map(|b| b.id)
            .collect();
        Ok(state
            .fired
            .iter()
            .filter(|f| ours.contains(&f.budget))
            .cloned()
            .collect())
    }

    async fn record_transitions(
        &self,
        domain: DomainId,
        transitions: &[Transition],
    ) -> Result<Vec<EventId>, StoreError> {
        let mut state = self.lock();
        let mut next = state.clone();
        let mut stored = Vec::new();
        for t in transitions {
            let at = |f: &FiredThreshold| {
                f.budget == t.budget
                    && f.notification == t.notification
                    && f.period_start == t.period_start
            };
            let exists = next
                .budgets
                .iter()
                .any(|b| b.domain == domain && b.id == t.budget);
            let fired = next.fired.iter().any(at);
            if t.fire {
                if !exists || fired {
                    continue;
                }
                next.fired.push(FiredThreshold {
                    budget: t.budget,
                    notification: t.notification,
                    period_start: t.period_start,
                    fired_at: t.event.occurred_at,
                });
            } else {
                if !fired {
                    continue;
                }
                next.fired.retain(|f| !at(f));
            }
            next.queue_event(domain, &t.event, &t.channels);
            stored.push(t.event.id);
        }
        *state = next;
        Ok(stored)
    }

    async fn events(
        &self,
        domain: DomainId,
        subject: Option<uuid::Uuid>,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        let state = self.lock();
        let mut out: Vec<Event> = state
            .events
            .iter()
            .filter(|e| e.domain == domain && subject.is_none_or(|s| e.subject == s))
            .cloned()
            .collect();
        out.sort_by(|a, b| b.occurred_at.cmp(&a.occurred_at).then(b.id.cmp(&a.id)));
        out.truncate(limit as usize);
        Ok(out)
    }

    async fn claim_deliveries(
        &self,
        domain: DomainId,
        now: DateTime<Utc>,
        claim_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let mut state = self.lock();
        let mut due: Vec<usize> = (0..state.deliveries.len())
            .filter(|i| {
                let d = &state.deliveries[*i];
                d.domain == domain
                    && d.state == DeliveryState::Pending
                    && d.next_attempt_at.timestamp_millis() <= now.timestamp_millis()
            })
            .collect();
        due.sort_by_key(|i| {
            (
                state.deliveries[*i].next_attempt_at,
                state.deliveries[*i].id,
            )
        });
        due.truncate(limit as usize);
        let mut out = Vec::new();
        for i in due {
            let delivery = state.deliveries[i].clone();
            let Some(event) = state
                .events
                .iter()
                .find(|e| e.id == delivery.event)
                .cloned()
            else {
                continue;
            };
            state.deliveries[i].next_attempt_at = claim_until;
            out.push(DueDelivery { delivery, event });
        }
        Ok(out)
    }

    async fn finish_delivery(
        &self,
        domain: DomainId,
        id: DeliveryId,
        attempts: u32,
        outcome: &DeliveryOutcome,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        let d = state
            .deliveries
            .iter_mut()
            .find(|d| d.domain == domain && d.id == id)
            .ok_or_else(|| not_found("delivery", id))?;
        d.attempts = attempts;
        match outcome {
            DeliveryOutcome::Sent => {
                d.state = DeliveryState::Sent;
                d.finished_at = Some(at);
            }
            DeliveryOutcome::Retry { next, error } => {
                d.next_attempt_at = *next;
                d.last_error = Some(error.clone());
            }
            DeliveryOutcome::Failed { error } => {
                d.state = DeliveryState::Failed;
                d.last_error = Some(error.clone());
                d.finished_at = Some(at);
            }
        }
        Ok(())
    }

    async fn deliveries(&self, domain: DomainId, limit: u32) -> Result<Vec<Delivery>, StoreError> {
        let state = self.lock();
        let mut out: Vec<Delivery> = state
            .deliveries
            .iter()
            .filter(|d| d.domain == domain)
            .cloned()
            .collect();
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        out.truncate(limit as usize);
        Ok(out)
    }

    async fn delivery_counts(&self, domain: DomainId) -> Result<[u64; 3], StoreError> {
        let state = self.lock();
        let mut counts = [0u64; 3];
        for d in state.deliveries.iter().filter(|d| d.domain == domain) {
            counts[d.state as usize] += 1;
        }
        Ok(counts)
    }
}

impl State {
    /// Queues `event` with a pending delivery per channel of the domain (the SQL stores'
    /// `queue_event`).
    pub(super) fn queue_event(&mut self, domain: DomainId, event: &Event, channels: &[ChannelId]) {
        for channel in channels {
            if !self
                .channels
                .iter()
                .any(|(c, _)| c.domain == domain && c.id == *channel)
            {
                continue;
            }
            self.deliveries.push(Delivery {
                id: DeliveryId::new(),
                domain,
                event: event.id,
                event_kind: event.kind.clone(),
                channel: *channel,
                state: DeliveryState::Pending,
                attempts: 0,
                next_attempt_at: event.occurred_at,
                last_error: None,
                created_at: event.occurred_at,
                finished_at: None,
            });
        }
        let mut event = event.clone();
        event.domain = domain;
        self.events.push(event);
    }
}
